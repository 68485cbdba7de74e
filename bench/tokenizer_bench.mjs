// Encodes a text file with the Hugging Face tokenizers library (Rust, through
// the @anush008/tokenizers Node binding), best of 5, in the two ways
// tokenizer_bench.cc does: the whole file in one encode call, and the file
// cut after each blank line, encoded with one encodeBatch call (sequential
// when TOKENIZERS_PARALLELISM=false, as tokenizer_bench.sh sets it, so that
// no per-call overhead of the binding is counted). Writes IDS_OUT.whole and
// IDS_OUT.paragraphs.
//
//   node tokenizer_bench.mjs NODE_MODULES_DIR TOKENIZER_JSON TEXT_FILE IDS_OUT
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [modules, tokenizerPath, textPath, idsPath] = process.argv.slice(2);
const require = createRequire(join(modules, 'package.json'));
const { Tokenizer } = require('@anush008/tokenizers');

const tokenizer = Tokenizer.fromFile(tokenizerPath);
const bytes = readFileSync(textPath);
// Invalid UTF-8 becomes U+FFFD, one per maximal subpart, as Garden does.
const text = bytes.toString('utf8');
const paragraphs = [];
for (let at = 0; at < text.length;) {
  let end = text.indexOf('\n\n', at);
  end = end < 0 ? text.length : end + 2;
  paragraphs.push(text.slice(at, end));
  at = end;
}

async function measure(name, encode) {
  let best = Infinity;
  let ids = [];
  for (let run = 0; run < 5; ++run) {
    const start = process.hrtime.bigint();
    ids = await encode();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  const mbps = bytes.length / best / 1e6;
  console.log(`huggingface ${name}: ${bytes.length} bytes, ${ids.length} ` +
              `tokens, best of 5 ${(best * 1e3).toFixed(1)} ms, ` +
              `${mbps.toFixed(2)} MB/s`);
  writeFileSync(`${idsPath}.${name}`, ids.join('\n') + '\n');
}

const options = { addSpecialTokens: false };
await measure('whole', async () =>
  (await tokenizer.encode(text, null, options)).getIds());
await measure('paragraphs', async () => {
  const encodings = await tokenizer.encodeBatch(paragraphs, options);
  return encodings.flatMap((e) => e.getIds());
});
