// Node's built-in fetch (no npm package) against relu-server's HTTP front
// door, on the port in RELU_HTTP_PORT (http_clients_test.sh starts the
// server): metadata, a JSON infer, binary data in and out bit for bit, and
// an error's JSON body.
'use strict';
const test = require('node:test');
const assert = require('node:assert');

const base = `http://127.0.0.1:${process.env.RELU_HTTP_PORT}`;

test('health, server and model metadata', async () => {
  let r = await fetch(`${base}/v2/health/ready`);
  assert.strictEqual(r.status, 200);
  assert.deepStrictEqual(await r.json(), {ready: true});
  r = await fetch(`${base}/v2`);
  assert.strictEqual((await r.json()).name, 'relu-serve');
  r = await fetch(`${base}/v2/models/relu`);
  const meta = await r.json();
  assert.deepStrictEqual(meta.versions, ['1']);
  assert.strictEqual(meta.inputs[0].name, 'input');
});

test('JSON infer: the tutorial example, -0.0 kept, the id echoed', async () => {
  const r = await fetch(`${base}/v2/models/relu/infer`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({
      id: 'node-1',
      inputs: [{name: 'input', shape: [2, 2], datatype: 'FP32',
                data: [[-5, -1.5], [2.5, 3]]}],
      parameters: {threshold: 2.5},
    }),
  });
  assert.strictEqual(r.status, 200);
  const answer = await r.json();
  assert.strictEqual(answer.id, 'node-1');
  assert.deepStrictEqual(answer.outputs[0].shape, [2, 2]);
  const data = answer.outputs[0].data;
  assert.deepStrictEqual(data.map((v) => Object.is(v, -0)),
                         [true, true, false, false]);
  assert.deepStrictEqual(data, [-0, -0, 0, 3]);
});

test('binary data: FP32 in and out, bit for bit', async () => {
  const values = new Float32Array([-1, 0.1, -0, 3.4028234663852886e38, NaN]);
  const header = new TextEncoder().encode(JSON.stringify({
    inputs: [{name: 'input', shape: [values.length], datatype: 'FP32',
              parameters: {binary_data_size: values.byteLength}}],
    outputs: [{name: 'output', parameters: {binary_data: true}}],
    parameters: {max_value: 6},
  }));
  const body = new Uint8Array(header.length + values.byteLength);
  body.set(header, 0);
  body.set(new Uint8Array(values.buffer), header.length);
  const r = await fetch(`${base}/v2/models/relu/infer`, {
    method: 'POST',
    headers: {'Content-Type': 'application/octet-stream',
              'Inference-Header-Content-Length': String(header.length)},
    body,
  });
  assert.strictEqual(r.status, 200);
  const length = Number(r.headers.get('inference-header-content-length'));
  const bytes = new Uint8Array(await r.arrayBuffer());
  const meta = JSON.parse(new TextDecoder().decode(bytes.slice(0, length)));
  assert.strictEqual(meta.outputs[0].parameters.binary_data_size, 20);
  const out = new Float32Array(bytes.slice(length).buffer);
  assert.strictEqual(out[0], 0);
  assert.ok(Math.abs(out[1] - 0.1) < 1e-8);
  assert.ok(Object.is(out[2], -0));
  assert.strictEqual(out[3], 6);
  assert.ok(Number.isNaN(out[4]));
});

test('an error is JSON with the HTTP status', async () => {
  const r = await fetch(`${base}/v2/models/relu/infer`, {
    method: 'POST',
    body: JSON.stringify({inputs: [{name: 'input', shape: [1],
                                    datatype: 'FP32', data: [1]}],
                          parameters: {negative_slope: -0.1}}),
  });
  assert.strictEqual(r.status, 400);
  assert.deepStrictEqual(await r.json(), {
    error: 'negative_slope of a ReLU layer cannot be a negative value. ' +
           'Received: negative_slope=-0.1',
  });
  const missing = await fetch(`${base}/v2/models/sigmoid`);
  assert.strictEqual(missing.status, 404);
});
