/**
 * Qwen3 config.json parsing, validation and writing, and the parameter list a config implies.
 * Guards against: a malformed field surfacing later as a shape error deep in the model (or not at
 * all), unknown fields lost on save, and parameter shapes that drift from HF's Qwen3 (checked
 * against the published Qwen3-4B parameter count).
 */
import { describe, expect, it } from 'vitest';
import { expectedParameters, formatConfigJson, Qwen3Config } from '../ts/model/config.js';
import { ModelConfigError } from '../ts/model/errors.js';

/** Qwen3-4B's config.json as published (transformers 4.51). */
const QWEN3_4B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 2560,
  initializer_range: 0.02,
  intermediate_size: 9728,
  max_position_embeddings: 40960,
  max_window_layers: 36,
  model_type: 'qwen3',
  num_attention_heads: 32,
  num_hidden_layers: 36,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.51.0',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

function configError(json: unknown): ModelConfigError {
  try {
    Qwen3Config.fromHfJson(json, '/models/x/config.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ModelConfigError);
    return e as ModelConfigError;
  }
  throw new Error('expected a ModelConfigError');
}

describe('Qwen3Config', () => {
  it('parses Qwen3-4B into camelCase fields', () => {
    const c = Qwen3Config.fromHfJson(QWEN3_4B);
    expect({ ...c, extra: undefined }).toEqual({
      vocabSize: 151936,
      hiddenSize: 2560,
      intermediateSize: 9728,
      numHiddenLayers: 36,
      numAttentionHeads: 32,
      numKeyValueHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-6,
      ropeTheta: 1000000,
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 40960,
      torchDtype: 'bfloat16',
      bosTokenId: 151643,
      eosTokenId: 151645,
      extra: undefined,
    });
    expect(c.extra.transformers_version).toBe('4.51.0');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('round-trips every field, unknown ones included, and writes sorted JSON', () => {
    const json = { ...QWEN3_4B, custom: { nested: [1, 'two', null] } };
    expect(Qwen3Config.fromHfJson(json).toHfJson()).toEqual(json);
    const text = formatConfigJson(Qwen3Config.fromHfJson(json));
    expect(JSON.parse(text)).toEqual(json);
    const keys = Object.keys(JSON.parse(text));
    expect(keys).toEqual([...keys].sort());
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('keeps the newer `dtype` key when a config uses it instead of torch_dtype', () => {
    const { torch_dtype: _, ...rest } = QWEN3_4B;
    const c = Qwen3Config.fromHfJson({ ...rest, dtype: 'bfloat16' });
    expect(c.torchDtype).toBe('bfloat16');
    const out = c.with({ torchDtype: 'float32' }).toHfJson();
    expect(out.dtype).toBe('float32');
    expect('torch_dtype' in out).toBe(false);
  });

  it('fills documented defaults for absent fields', () => {
    const minimal = {
      model_type: 'qwen3',
      vocab_size: 100,
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
    };
    const c = Qwen3Config.fromHfJson(minimal);
    expect(c.numKeyValueHeads).toBe(4);
    expect(c.headDim).toBe(16);
    expect(c.rmsNormEps).toBe(1e-6);
    expect(c.ropeTheta).toBe(10000);
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.maxPositionEmbeddings).toBe(32768);
    expect(c.torchDtype).toBeUndefined();
    expect('bos_token_id' in c.toHfJson()).toBe(false);
  });

  it('with() changes a field and validates again', () => {
    const c = Qwen3Config.fromHfJson(QWEN3_4B);
    const d = c.with({ vocabSize: 152000 });
    expect(d.vocabSize).toBe(152000);
    expect(d.toHfJson().vocab_size).toBe(152000);
    expect(c.vocabSize).toBe(151936);
    expect(() => c.with({ numKeyValueHeads: 5 })).toThrow(ModelConfigError);
    expect(() => c.with({ nope: 1 } as never)).toThrow(TypeError);
  });

  it('expectedParameters gives HF names and shapes and Qwen3-4B has 4,022,468,096 parameters', () => {
    const c = Qwen3Config.fromHfJson(QWEN3_4B);
    const params = expectedParameters(c);
    expect(params.length).toBe(1 + 36 * 11 + 1);
    const byName = new Map(params.map((p) => [p.name, p.shape]));
    expect(byName.get('model.embed_tokens.weight')).toEqual([151936, 2560]);
    expect(byName.get('model.layers.0.self_attn.q_proj.weight')).toEqual([4096, 2560]);
    expect(byName.get('model.layers.35.self_attn.k_proj.weight')).toEqual([1024, 2560]);
    expect(byName.get('model.layers.35.self_attn.v_proj.weight')).toEqual([1024, 2560]);
    expect(byName.get('model.layers.7.self_attn.o_proj.weight')).toEqual([2560, 4096]);
    expect(byName.get('model.layers.7.self_attn.q_norm.weight')).toEqual([128]);
    expect(byName.get('model.layers.7.mlp.down_proj.weight')).toEqual([2560, 9728]);
    expect(byName.has('lm_head.weight')).toBe(false);
    expect(params.some((p) => p.name.endsWith('.bias'))).toBe(false);
    expect(params.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0)).toBe(4_022_468_096);
    const untied = expectedParameters(c.with({ tieWordEmbeddings: false }));
    expect(untied.at(-1)).toEqual({ name: 'lm_head.weight', shape: [151936, 2560] });
  });

  describe('a malformed field is a ModelConfigError naming the file and the field', () => {
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['vocab_size a string', { vocab_size: '151936' }, 'vocab_size', /field 'vocab_size' is "151936"; it must be a positive integer/],
      ['hidden_size zero', { hidden_size: 0 }, 'hidden_size', /'hidden_size' is 0/],
      ['intermediate_size fractional', { intermediate_size: 9728.5 }, 'intermediate_size', /'intermediate_size' is 9728.5/],
      ['num_hidden_layers missing', { num_hidden_layers: undefined }, 'num_hidden_layers', /'num_hidden_layers' is undefined/],
      ['num_attention_heads negative', { num_attention_heads: -32 }, 'num_attention_heads', /'num_attention_heads' is -32/],
      [
        'heads not divisible by kv heads',
        { num_key_value_heads: 7 },
        'num_key_value_heads',
        /num_attention_heads 32 is not divisible by num_key_value_heads 7/,
      ],
      [
        'head_dim absent and not derivable',
        { head_dim: undefined, num_attention_heads: 24, num_key_value_heads: 8 },
        'head_dim',
        /no head_dim and hidden_size 2560/,
      ],
      ['rms_norm_eps negative', { rms_norm_eps: -1e-6 }, 'rms_norm_eps', /positive number/],
      ['rope_theta NaN-ish', { rope_theta: 'inf' }, 'rope_theta', /'rope_theta'/],
      ['tie_word_embeddings a string', { tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /true or false/],
      ['eos_token_id a string', { eos_token_id: '<|im_end|>' }, 'eos_token_id', /token id, a list of ids or null/],
      ['torch_dtype a number', { torch_dtype: 16 }, 'torch_dtype', /must be a string/],
      ['model_type llama', { model_type: 'llama' }, 'model_type', /"llama"; npr-runtime loads only "qwen3"/],
      [
        'architectures of another head',
        { architectures: ['Qwen3ForSequenceClassification'] },
        'architectures',
        /expected \["Qwen3ForCausalLM"\]/,
      ],
      ['rope_scaling yarn', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, 'rope_scaling', /RoPE scaling/],
      ['hidden_act gelu', { hidden_act: 'gelu' }, 'hidden_act', /only "silu"/],
      ['attention_bias true', { attention_bias: true }, 'attention_bias', /no attention biases/],
      ['sliding window on', { use_sliding_window: true }, 'use_sliding_window', /sliding-window/],
    ];
    for (const [what, change, field, pattern] of cases) {
      it(what, () => {
        const err = configError({ ...QWEN3_4B, ...change });
        expect(err.field).toBe(field);
        expect(err.message).toContain('/models/x/config.json');
        expect(err.message).toMatch(pattern);
      });
    }
    it('not an object', () => {
      expect(configError([1]).message).toMatch(/is not a JSON object/);
      expect(configError(null).message).toMatch(/is not a JSON object/);
    });
  });
});
