/**
 * Qwen3ForCausalLM config.json: parsed into a typed, validated `Qwen3Config` (camelCase fields),
 * written back with `toHfJson()`; every field we do not model is kept verbatim, so a config
 * round-trips. Also the list of parameter names and shapes a config implies (HF names).
 *
 * Defaults for absent fields: num_key_value_heads = num_attention_heads, head_dim =
 * hidden_size / num_attention_heads (HF's Qwen3Config class would use 128; real Qwen3 configs always
 * write head_dim), rms_norm_eps 1e-6, rope_theta 10000, tie_word_embeddings false,
 * max_position_embeddings 32768.
 *
 * Deliberately rejected rather than silently ignored: rope_scaling (YaRN etc.), sliding-window
 * attention, attention biases, activations other than silu. Deliberately not here: file I/O
 * (hf_dir.ts reads and writes config.json).
 */
import { ModelConfigError } from './errors.js';

export type TokenIds = number | number[] | null;

export interface Qwen3ConfigFields {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  /** 'bfloat16', 'float32', ...; undefined when config.json has none. */
  torchDtype: string | undefined;
  /** undefined when config.json has no such field (it is then not written either). */
  bosTokenId: TokenIds | undefined;
  eosTokenId: TokenIds | undefined;
}

/** One parameter a Qwen3ForCausalLM with this config has. */
export interface ParamSpec {
  name: string;
  shape: number[];
}

const KNOWN: Record<keyof Qwen3ConfigFields, string> = {
  vocabSize: 'vocab_size',
  hiddenSize: 'hidden_size',
  intermediateSize: 'intermediate_size',
  numHiddenLayers: 'num_hidden_layers',
  numAttentionHeads: 'num_attention_heads',
  numKeyValueHeads: 'num_key_value_heads',
  headDim: 'head_dim',
  rmsNormEps: 'rms_norm_eps',
  ropeTheta: 'rope_theta',
  tieWordEmbeddings: 'tie_word_embeddings',
  maxPositionEmbeddings: 'max_position_embeddings',
  torchDtype: 'torch_dtype',
  bosTokenId: 'bos_token_id',
  eosTokenId: 'eos_token_id',
};
const ARCHITECTURE = 'Qwen3ForCausalLM';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A validated Qwen3 config. Immutable: `with()` returns a changed, re-validated copy. */
export class Qwen3Config implements Qwen3ConfigFields {
  readonly vocabSize!: number;
  readonly hiddenSize!: number;
  readonly intermediateSize!: number;
  readonly numHiddenLayers!: number;
  readonly numAttentionHeads!: number;
  readonly numKeyValueHeads!: number;
  readonly headDim!: number;
  readonly rmsNormEps!: number;
  readonly ropeTheta!: number;
  readonly tieWordEmbeddings!: boolean;
  readonly maxPositionEmbeddings!: number;
  readonly torchDtype!: string | undefined;
  readonly bosTokenId!: TokenIds | undefined;
  readonly eosTokenId!: TokenIds | undefined;
  /** Every config.json field not modelled above, verbatim (model_type, architectures, hidden_act, ...). */
  readonly extra: Readonly<Record<string, unknown>>;

  private constructor(fields: Qwen3ConfigFields, extra: Record<string, unknown>, source: string) {
    Object.assign(this, fields);
    this.extra = extra;
    validate(this, source);
    Object.freeze(this);
  }

  /**
   * Parses the JSON object of a config.json. `source` names the file in error messages.
   * ModelConfigError (naming the field) when it is not a valid Qwen3ForCausalLM config.
   */
  static fromHfJson(json: unknown, source = 'config.json'): Qwen3Config {
    if (!isObject(json)) throw new ModelConfigError(source, 'is not a JSON object');
    checkArchitecture(json, source);
    const extra: Record<string, unknown> = { ...json };
    for (const key of Object.values(KNOWN)) delete extra[key];
    // newer transformers write `dtype` instead of `torch_dtype`: read either, keep the original key
    const dtypeKey = 'dtype' in json && !('torch_dtype' in json) ? 'dtype' : 'torch_dtype';
    if (dtypeKey === 'dtype') delete extra.dtype;
    const get = (key: string): unknown => json[key];
    const int = (key: string, fallback?: number): number => {
      const v = get(key) ?? fallback;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
        throw new ModelConfigError(source, `field '${key}' is ${JSON.stringify(v)}; it must be a positive integer`, key);
      }
      return v;
    };
    const real = (key: string, fallback: number): number => {
      const v = get(key) ?? fallback;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        throw new ModelConfigError(source, `field '${key}' is ${JSON.stringify(v)}; it must be a positive number`, key);
      }
      return v;
    };
    const ids = (key: string): TokenIds | undefined => {
      const v = get(key);
      const ok = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
      if (v === undefined || v === null || ok(v) || (Array.isArray(v) && v.every(ok))) return v as TokenIds | undefined;
      throw new ModelConfigError(source, `field '${key}' is ${JSON.stringify(v)}; it must be a token id, a list of ids or null`, key);
    };
    const tie = get('tie_word_embeddings') ?? false;
    if (typeof tie !== 'boolean')
      throw new ModelConfigError(source, `field 'tie_word_embeddings' must be true or false`, 'tie_word_embeddings');
    const torchDtype = get(dtypeKey);
    if (torchDtype !== undefined && torchDtype !== null && typeof torchDtype !== 'string') {
      throw new ModelConfigError(source, `field '${dtypeKey}' must be a string such as "bfloat16"`, dtypeKey);
    }
    const hidden = int('hidden_size');
    const heads = int('num_attention_heads');
    if (get('head_dim') == null && hidden % heads !== 0) {
      throw new ModelConfigError(
        source,
        `has no head_dim and hidden_size ${hidden} is not divisible by num_attention_heads ${heads}; add head_dim`,
        'head_dim',
      );
    }
    const config = new Qwen3Config(
      {
        vocabSize: int('vocab_size'),
        hiddenSize: hidden,
        intermediateSize: int('intermediate_size'),
        numHiddenLayers: int('num_hidden_layers'),
        numAttentionHeads: heads,
        numKeyValueHeads: int('num_key_value_heads', heads),
        headDim: int('head_dim', hidden / heads),
        rmsNormEps: real('rms_norm_eps', 1e-6),
        ropeTheta: real('rope_theta', 10000),
        tieWordEmbeddings: tie,
        maxPositionEmbeddings: int('max_position_embeddings', 32768),
        torchDtype: torchDtype ?? undefined,
        bosTokenId: ids('bos_token_id'),
        eosTokenId: ids('eos_token_id'),
      },
      extra,
      source,
    );
    DTYPE_KEY.set(config, dtypeKey);
    return config;
  }

  /** A config from typed fields (for tiny test models); architectures/model_type are filled in. */
  static create(
    fields: Partial<Qwen3ConfigFields> & Pick<Qwen3ConfigFields, RequiredField>,
    extra: Record<string, unknown> = {},
  ): Qwen3Config {
    const json: Record<string, unknown> = { architectures: [ARCHITECTURE], model_type: 'qwen3', hidden_act: 'silu', ...extra };
    for (const [camel, snake] of Object.entries(KNOWN)) {
      const v = fields[camel as keyof Qwen3ConfigFields];
      if (v !== undefined) json[snake] = v;
    }
    return Qwen3Config.fromHfJson(json, 'Qwen3Config.create');
  }

  /** A copy with some fields changed (validated again). */
  with(changes: Partial<Qwen3ConfigFields>): Qwen3Config {
    const json = { ...this.toHfJson() };
    for (const [camel, v] of Object.entries(changes)) {
      const snake = KNOWN[camel as keyof Qwen3ConfigFields];
      if (snake === undefined) throw new TypeError(`Qwen3Config.with: unknown field '${camel}'`);
      json[camel === 'torchDtype' ? (DTYPE_KEY.get(this) ?? snake) : snake] = v;
    }
    return Qwen3Config.fromHfJson(json, 'Qwen3Config.with');
  }

  /** The config.json object: every modelled field (defaults written out) plus the kept unknown fields. */
  toHfJson(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.extra };
    for (const [camel, snake] of Object.entries(KNOWN)) {
      const v = this[camel as keyof Qwen3ConfigFields];
      if (v === undefined) continue;
      out[camel === 'torchDtype' ? (DTYPE_KEY.get(this) ?? snake) : snake] = v;
    }
    return out;
  }
}

type RequiredField = 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'numHiddenLayers' | 'numAttentionHeads';

/** Which key the dtype came from ('torch_dtype' or 'dtype'); kept outside the frozen object. */
const DTYPE_KEY = new WeakMap<Qwen3Config, string>();

function checkArchitecture(json: Record<string, unknown>, source: string): void {
  if (json.model_type !== 'qwen3') {
    throw new ModelConfigError(
      source,
      `field 'model_type' is ${JSON.stringify(json.model_type)}; npr-runtime loads only "qwen3" models`,
      'model_type',
    );
  }
  const arch = json.architectures;
  if (arch !== undefined && arch !== null && !(Array.isArray(arch) && arch.includes(ARCHITECTURE))) {
    throw new ModelConfigError(source, `field 'architectures' is ${JSON.stringify(arch)}; expected ["${ARCHITECTURE}"]`, 'architectures');
  }
}

function validate(c: Qwen3Config, source: string): void {
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0) {
    throw new ModelConfigError(
      source,
      `num_attention_heads ${c.numAttentionHeads} is not divisible by num_key_value_heads ${c.numKeyValueHeads}`,
      'num_key_value_heads',
    );
  }
  const reject = (key: string, ok: (v: unknown) => boolean, why: string) => {
    if (key in c.extra && !ok(c.extra[key]))
      throw new ModelConfigError(source, `field '${key}' is ${JSON.stringify(c.extra[key])}: ${why}`, key);
  };
  reject('hidden_act', (v) => v === 'silu', 'Qwen3 in npr-runtime supports only "silu"');
  reject('attention_bias', (v) => v === false, 'Qwen3 has no attention biases; npr-runtime does not load them');
  reject('use_sliding_window', (v) => v === false, 'sliding-window attention is not supported; set it to false');
  reject('layer_types', (v) => Array.isArray(v) && v.every((t) => t === 'full_attention'), 'only full attention is supported');
  reject('rope_scaling', (v) => v === null, 'RoPE scaling (YaRN etc.) is not supported; remove it to run at the native context length');
}

/**
 * Every parameter of a Qwen3ForCausalLM with this config, in HF names and [out, in] shapes, in
 * the order HF lists them. V vocab, H hidden, I intermediate, nH/nKV heads, D head_dim; no biases;
 * lm_head.weight [V, H] only when the embeddings are not tied.
 */
export function expectedParameters(c: Qwen3ConfigFields): ParamSpec[] {
  const V = c.vocabSize;
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const D = c.headDim;
  const q = c.numAttentionHeads * D;
  const kv = c.numKeyValueHeads * D;
  const out: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, H] }];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [H] },
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, H] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, q] },
      { name: `${p}.self_attn.q_norm.weight`, shape: [D] },
      { name: `${p}.self_attn.k_norm.weight`, shape: [D] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H] },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [H] });
  if (!c.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, H] });
  return out;
}

/** config.json text: keys sorted, 2-space indent, trailing newline (as transformers writes it). */
export function formatConfigJson(c: Qwen3Config): string {
  const json = c.toHfJson();
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(json).sort()) sorted[k] = json[k];
  return `${JSON.stringify(sorted, null, 2)}\n`;
}
