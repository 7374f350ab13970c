#include "addon/args.h"

#include <cmath>

namespace npr::addon {

void throw_type(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void throw_range(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

Napi::Error status_error(Napi::Env env, const Status& status) {
  Napi::Error err;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: err = Napi::TypeError::New(env, status.message()); break;
    case StatusCode::kOutOfRange: err = Napi::RangeError::New(env, status.message()); break;
    default: err = Napi::Error::New(env, status.message()); break;
  }
  err.Set("code", Napi::String::New(env, status_code_name(status.code())));
  return err;
}

void throw_status(Napi::Env env, const Status& status) {
  throw status_error(env, status);
}

std::string describe_type(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return "boolean";
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isnan(d)) return "NaN";
    return "number " + Napi::Value(v).ToString().Utf8Value();
  }
  if (v.IsString()) return "string";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      case napi_bigint64_array: return "BigInt64Array";
      case napi_biguint64_array: return "BigUint64Array";
      default: return "TypedArray";
    }
  }
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  if (v.IsBigInt()) return "bigint";
  if (v.IsSymbol()) return "symbol";
  return "object";
}

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t index, const char* fn,
                        const char* name, bool optional) {
  Napi::Value v = info[index];
  if (optional && v.IsUndefined()) return Napi::Object::New(info.Env());
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
    throw_type(info.Env(), std::string(fn) + ": argument '" + name + "' must be an object (got " +
                               describe_type(v) + ")");
  return v.As<Napi::Object>();
}

int64_t int_field(const Napi::Object& obj, const char* fn, const char* key, int64_t lo, int64_t hi,
                  bool has_fallback, int64_t fallback) {
  Napi::Env env = obj.Env();
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() && has_fallback) return fallback;
  const std::string where = std::string(fn) + ": options." + key;
  if (!v.IsNumber()) throw_type(env, where + " must be an integer (got " + describe_type(v) + ")");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d))
    throw_range(env, where + " must be an integer (got " + describe_type(v) + ")");
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw_range(env, where + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "] (got " + describe_type(v) + ")");
  return static_cast<int64_t>(d);
}

double number_field(const Napi::Object& obj, const char* fn, const char* key, bool has_fallback,
                    double fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined() && has_fallback) return fallback;
  const std::string where = std::string(fn) + ": options." + key;
  if (!v.IsNumber())
    throw_type(obj.Env(), where + " must be a number (got " + describe_type(v) + ")");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d))
    throw_range(obj.Env(), where + " must be finite (got " + describe_type(v) + ")");
  return d;
}

bool bool_field(const Napi::Object& obj, const char* fn, const char* key, bool fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean())
    throw_type(obj.Env(), std::string(fn) + ": options." + key + " must be a boolean (got " +
                              describe_type(v) + ")");
  return v.As<Napi::Boolean>().Value();
}

std::string enum_field(const Napi::Object& obj, const char* fn, const char* key,
                       std::initializer_list<const char*> allowed, const char* fallback) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : " | ") + "'" + a + "'";
  const std::string where = std::string(fn) + ": options." + key;
  if (!v.IsString())
    throw_type(obj.Env(), where + " must be " + list + " (got " + describe_type(v) + ")");
  std::string s = v.As<Napi::String>().Utf8Value();
  for (const char* a : allowed)
    if (s == a) return s;
  throw_range(obj.Env(), where + " must be " + list + " (got '" + s + "')");
}

Napi::Int32Array int32_arg(const Napi::Value& v, const char* fn, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_type(v.Env(), std::string(fn) + ": " + name + " must be an Int32Array (got " +
                            describe_type(v) + ")");
  return v.As<Napi::Int32Array>();
}

F32Arg f32_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(info.Env(), std::string(fn) + ": argument '" + name +
                               "' must be a Float32Array (got " + describe_type(v) + ")");
  F32Arg a;
  a.array = v.As<Napi::Float32Array>();
  a.data = a.array.Data();
  a.length = static_cast<int64_t>(a.array.ElementLength());
  if (a.length > 0 && reinterpret_cast<uintptr_t>(a.data) % alignof(float) != 0)
    throw_range(info.Env(), std::string(fn) + ": argument '" + name +
                                "' is not 4-byte aligned (byteOffset must be a multiple of 4)");
  return a;
}

void check_no_overlap(Napi::Env env, const char* fn, const char* out_name, const F32Arg& out,
                      const char* in_name, const F32Arg& in) {
  if (out.length == 0 || in.length == 0) return;
  const char* o0 = reinterpret_cast<const char*>(out.data);
  const char* o1 = o0 + out.length * sizeof(float);
  const char* i0 = reinterpret_cast<const char*>(in.data);
  const char* i1 = i0 + in.length * sizeof(float);
  if (o0 < i1 && i0 < o1)
    throw_range(env, std::string(fn) + ": output '" + out_name + "' must not share memory with '" +
                         in_name + "'");
}

}  // namespace npr::addon
