// Argument checking at the N-API boundary: every export validates what it is given and
// throws a TypeError (wrong type or dtype) or RangeError (size, length, value out of range)
// whose message names the function, the argument and what was expected. Status failures
// from the native code are turned into JS errors by throw_status.
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/status.h"

namespace npr::addon {

[[noreturn]] void throw_type(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range(Napi::Env env, const std::string& message);
// TypeError for InvalidArgument, RangeError for OutOfRange, Error otherwise; the error gets
// `code` = the status code name (e.g. "CUDA_ERROR").
[[noreturn]] void throw_status(Napi::Env env, const Status& status);
Napi::Error status_error(Napi::Env env, const Status& status);

// A short description of a JS value's type for messages: "number", "Int32Array", "null".
std::string describe_type(const Napi::Value& v);

// The options object at info[index]; `undefined` gives an empty object when optional.
Napi::Object object_arg(const Napi::CallbackInfo& info, size_t index, const char* fn,
                        const char* name, bool optional);

// An integer field of `obj` in [lo, hi]; a missing field takes `fallback` when has_fallback.
int64_t int_field(const Napi::Object& obj, const char* fn, const char* key, int64_t lo, int64_t hi,
                  bool has_fallback = false, int64_t fallback = 0);
// A finite number field; missing takes `fallback` when has_fallback.
double number_field(const Napi::Object& obj, const char* fn, const char* key,
                    bool has_fallback = false, double fallback = 0.0);
bool bool_field(const Napi::Object& obj, const char* fn, const char* key, bool fallback);
// A string field that must be one of `allowed`; missing takes `fallback`.
std::string enum_field(const Napi::Object& obj, const char* fn, const char* key,
                       std::initializer_list<const char*> allowed, const char* fallback);

// An Int32Array argument `name` of function `fn` (TypeError naming both otherwise).
Napi::Int32Array int32_arg(const Napi::Value& v, const char* fn, const char* name);

// A Float32Array argument (by position) with its data pointer and length in elements.
struct F32Arg {
  Napi::Float32Array array;
  float* data = nullptr;
  int64_t length = 0;
};
F32Arg f32_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);

// A typed-array field `key` of `o` of the given type (TypeError naming `type_name` otherwise);
// `optional` lets it be undefined (an empty array comes back); with check_len its length must
// be expected_len (RangeError).
template <typename T>
T typed_field(const Napi::Object& o, const char* fn, const char* key, napi_typedarray_type type,
              const char* type_name, bool optional, size_t expected_len, bool check_len) {
  Napi::Value v = o.Get(key);
  if (optional && v.IsUndefined()) return T();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(o.Env(), std::string(fn) + ": " + key + " must be " + type_name + " (got " +
                            describe_type(v) + ")");
  T arr = v.As<T>();
  if (check_len && arr.ElementLength() != expected_len)
    throw_range(o.Env(), std::string(fn) + ": " + key + " must have " +
                             std::to_string(expected_len) + " elements (got " +
                             std::to_string(arr.ElementLength()) + ")");
  return arr;
}

// RangeError when `out` shares any byte with `in` (a kernel would read what it writes).
void check_no_overlap(Napi::Env env, const char* fn, const char* out_name, const F32Arg& out,
                      const char* in_name, const F32Arg& in);

}  // namespace npr::addon
