// An Open Inference Protocol client that relu-serve did not write: Node's
// @grpc/grpc-js with @grpc/proto-loader, loading proto/inference/
// grpc_service.proto, against the real relu-server binary on 127.0.0.1.
//
// Suites (--suite=...):
//   metadata  ServerLive/Ready/Metadata, ModelReady/Metadata, errors, metrics
//   golden    ModelInfer on the 100 golden cases of
//             tests/data/relu_golden_edges.json, raw (all dtypes) and typed
//             (FP32/FP64), bit for bit (NaN by isnan)
// Run by run_node_test.sh, which installs the packages. Exit 0 = pass.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const {createRequire} = require('node:module');
const {test, before, after} = require('node:test');

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([^=]+)=(.*)$/.exec(a);
  if (!m) throw new Error(`bad argument ${a}`);
  return [m[1], m[2]];
}));
const requireModule = createRequire(path.join(args.modules, '..', 'x.js'));
const grpc = requireModule('@grpc/grpc-js');
const protoLoader = requireModule('@grpc/proto-loader');

const definition = protoLoader.loadSync('inference/grpc_service.proto', {
  includeDirs: [args.proto],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const inference = grpc.loadPackageDefinition(definition).inference;

// ---------------------------------------------------------------------------
// The server under test.

let server;        // the child process
let serverLog = '';
let client;        // GRPCInferenceService client
let metricsPort;

function startServer() {
  return new Promise((resolve, reject) => {
    server = childProcess.spawn(args.server, [
      '--grpc-address=127.0.0.1:0', '--metrics-address=127.0.0.1:0',
      '--http-address=127.0.0.1:0',
    ], {stdio: ['ignore', 'pipe', 'pipe']});
    const onData = (chunk) => {
      serverLog += chunk.toString();
      const metrics = /metrics listening on 127\.0\.0\.1:(\d+)/.exec(serverLog);
      if (metrics) metricsPort = Number(metrics[1]);
      const grpcPort = /gRPC listening on 127\.0\.0\.1:(\d+)/.exec(serverLog);
      if (grpcPort) resolve(Number(grpcPort[1]));
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('exit', (code, signal) => reject(new Error(
        `relu-server exited (${code ?? signal}) before listening:\n${serverLog}`)));
    server.on('error', reject);
  });
}

before(async () => {
  const port = await startServer();
  client = new inference.GRPCInferenceService(
      `127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

after(async () => {
  if (client) client.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.on('exit', resolve));
    server.removeAllListeners('exit');
    server.on('exit', () => {});
    server.kill('SIGTERM');
    await exited;
  }
});

// A unary call as a promise.
function call(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

// Expects `method` to fail with `code` (a grpc.status name) and, if given,
// exactly `message`.
async function expectError(method, request, code, message) {
  await assert.rejects(call(method, request), (error) => {
    assert.equal(error.code, grpc.status[code],
                 `code ${error.code} (${error.details})`);
    if (message !== undefined) assert.equal(error.details, message);
    return true;
  });
}

function httpGet(port, target) {
  return new Promise((resolve, reject) => {
    http.get({host: '127.0.0.1', port, path: target}, (res) => {
      let body = '';
      res.on('data', (chunk) => body += chunk);
      res.on('end', () => resolve({status: res.statusCode, body}));
    }).on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// Tensors as bit patterns.

const DTYPES = {
  float16: {datatype: 'FP16', size: 2},
  bfloat16: {datatype: 'BF16', size: 2},
  float32: {datatype: 'FP32', size: 4},
  float64: {datatype: 'FP64', size: 8},
};

function hexToBuffer(dtype, hexes) {
  const size = DTYPES[dtype].size;
  const buffer = Buffer.alloc(hexes.length * size);
  hexes.forEach((hex, i) => {
    const bits = BigInt('0x' + hex);
    for (let b = 0; b < size; ++b) {
      buffer[i * size + b] = Number((bits >> BigInt(8 * b)) & 0xffn);
    }
  });
  return buffer;
}

function bufferToBits(dtype, buffer) {
  const size = DTYPES[dtype].size;
  assert.equal(buffer.length % size, 0);
  const out = [];
  for (let i = 0; i < buffer.length; i += size) {
    let bits = 0n;
    for (let b = size - 1; b >= 0; --b) {
      bits = (bits << 8n) | BigInt(buffer[i + b]);
    }
    out.push(bits);
  }
  return out;
}

function isNan(dtype, bits) {
  const [exponent, mantissa] = {
    float16: [0x7c00n, 0x03ffn],
    bfloat16: [0x7f80n, 0x007fn],
    float32: [0x7f800000n, 0x007fffffn],
    float64: [0x7ff0000000000000n, 0x000fffffffffffffn],
  }[dtype];
  return (bits & exponent) === exponent && (bits & mantissa) !== 0n;
}

// The spec's equality: bit for bit, any NaN equals any NaN.
function assertSameResults(dtype, got, wantHex, what) {
  assert.equal(got.length, wantHex.length, `${what}: element count`);
  got.forEach((bits, i) => {
    const want = BigInt('0x' + wantHex[i]);
    if (isNan(dtype, want)) {
      assert.ok(isNan(dtype, bits),
                `${what}[${i}]: got 0x${bits.toString(16)}, want a NaN`);
    } else {
      assert.equal(bits, want, `${what}[${i}]: got 0x${bits.toString(16)},` +
                   ` want 0x${want.toString(16)}`);
    }
  });
}

// JS numbers <-> float32/float64 bit patterns (for the typed fields).
function numbersFromHex(dtype, hexes) {
  const view = new DataView(new ArrayBuffer(8));
  return hexes.map((hex) => {
    if (dtype === 'float32') {
      view.setUint32(0, parseInt(hex, 16));
      return view.getFloat32(0);
    }
    view.setBigUint64(0, BigInt('0x' + hex));
    return view.getFloat64(0);
  });
}

function bitsFromNumbers(dtype, numbers) {
  const view = new DataView(new ArrayBuffer(8));
  return numbers.map((value) => {
    if (dtype === 'float32') {
      view.setFloat32(0, value);
      return BigInt(view.getUint32(0));
    }
    view.setFloat64(0, value);
    return view.getBigUint64(0);
  });
}

// A ModelInfer request for model relu.
function inferRequest(datatype, shape, extra = {}) {
  return {
    model_name: 'relu',
    inputs: [{name: 'input', datatype, shape}],
    ...extra,
  };
}

// ---------------------------------------------------------------------------

const suites = {};

suites.metadata = () => {
  test('ServerLive and ServerReady', async () => {
    assert.equal((await call('ServerLive', {})).live, true);
    assert.equal((await call('ServerReady', {})).ready, true);
  });

  test('ServerMetadata', async () => {
    const response = await call('ServerMetadata', {});
    assert.equal(response.name, 'relu-serve');
    assert.equal(response.version, args.version);
    assert.deepEqual(response.extensions, []);
  });

  test('ModelReady and ModelMetadata for relu, version "" and "1"', async () => {
    for (const version of ['', '1']) {
      assert.equal(
          (await call('ModelReady', {name: 'relu', version})).ready, true);
      const metadata = await call('ModelMetadata', {name: 'relu', version});
      assert.equal(metadata.name, 'relu');
      assert.deepEqual(metadata.versions, ['1']);
      assert.equal(metadata.platform, 'relu-serve_cpp');
      assert.deepEqual(metadata.inputs,
                       [{name: 'input', datatype: 'FP32', shape: ['-1']}]);
      assert.deepEqual(metadata.outputs,
                       [{name: 'output', datatype: 'FP32', shape: ['-1']}]);
    }
  });

  test('unknown models and versions are NOT_FOUND', async () => {
    const other = 'model "resnet50" is not served here; the only model is "relu"';
    await expectError('ModelReady', {name: 'resnet50'}, 'NOT_FOUND', other);
    await expectError('ModelMetadata', {name: 'resnet50'}, 'NOT_FOUND', other);
    const request = inferRequest('FP32', [1]);
    request.model_name = 'resnet50';
    request.raw_input_contents = [Buffer.alloc(4)];
    await expectError('ModelInfer', request, 'NOT_FOUND', other);
    await expectError('ModelMetadata', {name: 'relu', version: '3'},
                      'NOT_FOUND',
                      'model "relu" has no version "3"; the only version is "1"');
  });

  test('ModelInfer raw FP32, 2-D, with id and every parameter', async () => {
    const input = Buffer.alloc(6 * 4);
    [-3, -0.5, 0.5, 1, 4, 9].forEach((v, i) => input.writeFloatLE(v, i * 4));
    const response = await call('ModelInfer', inferRequest('FP32', [2, 3], {
      id: 'req-42',
      parameters: {
        max_value: {double_param: 6},
        negative_slope: {double_param: 0.5},
        threshold: {int64_param: '1'},
      },
      outputs: [{name: 'output'}],
      raw_input_contents: [input],
    }));
    assert.equal(response.model_name, 'relu');
    assert.equal(response.model_version, '1');
    assert.equal(response.id, 'req-42');
    assert.equal(response.outputs.length, 1);
    assert.equal(response.outputs[0].name, 'output');
    assert.equal(response.outputs[0].datatype, 'FP32');
    assert.deepEqual(response.outputs[0].shape, ['2', '3']);
    assert.equal(response.raw_output_contents.length, 1);
    const out = response.raw_output_contents[0];
    const values = [0, 1, 2, 3, 4, 5].map((i) => out.readFloatLE(i * 4));
    // x > threshold: min(x, max_value); else slope * (x - threshold).
    assert.deepEqual(values, [-2, -0.75, -0.25, 0, 4, 6]);
  });

  test('ModelInfer typed FP64 answers in fp64_contents', async () => {
    const response = await call('ModelInfer', inferRequest('FP64', [4], {
      inputs: [{name: 'input', datatype: 'FP64', shape: [4],
                contents: {fp64_contents: [-1e300, -0, 2.5, 1e300]}}],
    }));
    assert.deepEqual(response.raw_output_contents, []);
    assert.deepEqual(response.outputs[0].contents.fp64_contents,
                     [0, -0, 2.5, 1e300]);
  });

  test('errors: the same messages as ApplyReLU, fields named', async () => {
    const raw = (n) => [Buffer.alloc(n)];
    await expectError('ModelInfer', inferRequest('FP32', [1], {
      parameters: {max_value: {double_param: -1}}, raw_input_contents: raw(4),
    }), 'INVALID_ARGUMENT',
    'max_value of a ReLU layer cannot be a negative value. Received: ' +
        'max_value=-1.0');
    await expectError('ModelInfer', inferRequest('FP32', [2, 3], {
      raw_input_contents: raw(10),
    }), 'INVALID_ARGUMENT',
    'raw_input_contents[0] has 10 bytes; shape [2, 3] of float32 needs 24 ' +
        '(6 elements x 4 bytes)');
    await expectError('ModelInfer', inferRequest('FP16', [-1], {
      raw_input_contents: raw(0),
    }), 'INVALID_ARGUMENT',
    'inputs[0].shape[0] is -1; dimensions must be >= 0 (shape [-1])');
    await expectError('ModelInfer', {
      model_name: 'relu',
      inputs: [{name: 'x', datatype: 'FP32', shape: [1]}],
      raw_input_contents: raw(4),
    }, 'INVALID_ARGUMENT',
    'inputs[0] is named "x"; model "relu" takes one input, named "input"');
    await expectError('ModelInfer', {
      model_name: 'relu',
      inputs: [{name: 'input', datatype: 'FP32', shape: [1]},
               {name: 'input2', datatype: 'FP32', shape: [1]}],
      raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)],
    }, 'INVALID_ARGUMENT',
    'model "relu" takes 1 input, named "input"; the request has 2 ' +
        '["input", "input2"]');
    await expectError('ModelInfer', inferRequest('INT8', [1], {
      raw_input_contents: raw(1),
    }), 'INVALID_ARGUMENT',
    'inputs[0].datatype is "INT8"; model "relu" takes FP32, FP64, FP16 or BF16');
    await expectError('ModelInfer', inferRequest('FP32', [1], {
      parameters: {alpha: {double_param: 0.1}}, raw_input_contents: raw(4),
    }), 'INVALID_ARGUMENT',
    'parameters ["alpha"] not known to model "relu"; it takes max_value, ' +
        'negative_slope and threshold');
    await expectError('ModelInfer', inferRequest('FP32', [1], {
      parameters: {threshold: {bool_param: true}}, raw_input_contents: raw(4),
    }), 'INVALID_ARGUMENT',
    'parameters["threshold"] is a bool_param; send a double_param (or an ' +
        'int64_param)');
    // The server answers on after all of these.
    assert.equal((await call('ServerReady', {})).ready, true);
  });

  test('ModelInfer counts in relu_requests_total{method="ModelInfer"}',
       async () => {
         assert.ok(metricsPort, `no metrics port in the log:\n${serverLog}`);
         const {status, body} = await httpGet(metricsPort, '/metrics');
         assert.equal(status, 200);
         const value = (code) => {
           const line = body.split('\n').find((l) =>
             l.startsWith('relu_requests_total{') &&
             l.includes('method="ModelInfer"') && l.includes(`code="${code}"`));
           assert.ok(line, `no ModelInfer ${code} line`);
           return Number(line.split(' ').pop());
         };
         // The calls of the tests above, which ran first, in order.
         assert.equal(value('OK'), 2);
         assert.equal(value('NOT_FOUND'), 1);
         assert.equal(value('INVALID_ARGUMENT'), 8);
       });
};

suites.golden = () => {
  const cases = JSON.parse(fs.readFileSync(args.golden, 'utf8')).cases;

  test('the golden file has its 100 cases', () => {
    assert.equal(cases.length, 100);
  });

  // Raw: every dtype. A whole-number max_value goes as an int64_param, as a
  // Python client sends an int; the rest as double_param.
  test('golden cases, raw_input_contents', async () => {
    for (const c of cases) {
      const {datatype} = DTYPES[c.dtype];
      const parameters = {
        negative_slope: {double_param: c.params.negative_slope},
        threshold: {double_param: c.params.threshold},
      };
      if (c.params.max_value !== null) {
        parameters.max_value = Number.isInteger(c.params.max_value) ?
          {int64_param: String(c.params.max_value)} :
          {double_param: c.params.max_value};
      }
      const response = await call('ModelInfer', inferRequest(
          datatype, [c.input_hex.length],
          {parameters, raw_input_contents: [hexToBuffer(c.dtype, c.input_hex)]}));
      assert.equal(response.outputs[0].datatype, datatype, c.name);
      assert.deepEqual(response.outputs[0].shape,
                       [String(c.input_hex.length)], c.name);
      assert.equal(response.raw_output_contents.length, 1, c.name);
      assertSameResults(c.dtype,
                        bufferToBits(c.dtype, response.raw_output_contents[0]),
                        c.output_hex, c.name);
    }
  });

  // Typed: FP32 and FP64 through fp32_contents / fp64_contents.
  test('golden cases, typed contents (FP32, FP64)', async () => {
    let ran = 0;
    for (const c of cases) {
      if (c.dtype !== 'float32' && c.dtype !== 'float64') continue;
      const field = c.dtype === 'float32' ? 'fp32_contents' : 'fp64_contents';
      const {datatype} = DTYPES[c.dtype];
      const parameters = {
        negative_slope: {double_param: c.params.negative_slope},
        threshold: {double_param: c.params.threshold},
      };
      if (c.params.max_value !== null) {
        parameters.max_value = {double_param: c.params.max_value};
      }
      const response = await call('ModelInfer', {
        model_name: 'relu',
        model_version: '1',
        parameters,
        inputs: [{name: 'input', datatype, shape: [c.input_hex.length],
                  contents: {[field]: numbersFromHex(c.dtype, c.input_hex)}}],
      });
      assert.deepEqual(response.raw_output_contents, [], c.name);
      assertSameResults(
          c.dtype,
          bitsFromNumbers(c.dtype, response.outputs[0].contents[field]),
          c.output_hex, c.name);
      ++ran;
    }
    assert.ok(ran >= 40, `only ${ran} FP32/FP64 cases`);
  });
};

if (!suites[args.suite]) throw new Error(`unknown --suite=${args.suite}`);
suites[args.suite]();
