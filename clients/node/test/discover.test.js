// discover.js against a real lepton_server at $LEPTON_TARGET: the services
// it lists through reflection are the ones of the .proto files, and a call
// made from the server's descriptors alone answers as the server does.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { after, test } = require('node:test');
const protoLoader = require('@grpc/proto-loader');

const { connect, PROTO_PATH } = require('../lepton');

const TARGET = process.env.LEPTON_TARGET;
if (!TARGET) {
  throw new Error('LEPTON_TARGET must name a lepton_server (host:port); ' +
                  'clients/node/run-tests.sh starts one and sets it');
}
const lepton = connect(TARGET);
after(() => lepton.close());

function discover(...args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'discover.js'), ...args],
             { env: { ...process.env, LEPTON_TARGET: TARGET }, timeout: 60000 },
             (error, stdout, stderr) => resolve({ status: error ? error.code : 0, stdout, stderr }));
  });
}

// The methods of a service as the .proto file declares them, in discover.js's format.
function declared(file, service) {
  const definition = protoLoader.loadSync(file, { keepCase: true });
  return Object.entries(definition[service]).map(([method, d]) => {
    const request = (d.requestStream ? 'stream ' : '') + d.requestType.type.name;
    const response = (d.responseStream ? 'stream ' : '') + d.responseType.type.name;
    return `  ${method}(${request}) returns (${response})`;
  });
}

// The lines of `listing` under `service`, up to the next service.
function methodsOf(listing, service) {
  const lines = listing.split('\n');
  const start = lines.indexOf(service);
  assert.ok(start >= 0, `${service} not listed:\n${listing}`);
  const methods = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break;
    methods.push(line);
  }
  return methods;
}

test('lists every service with the methods its .proto declares', async () => {
  const { status, stdout, stderr } = await discover();
  assert.equal(status, 0, stderr);
  const services = stdout.split('\n').filter((l) => /^[a-z]/.test(l) && !l.startsWith('no '));
  for (const s of ['grpc.health.v1.Health', 'grpc.reflection.v1alpha.ServerReflection',
                   'inference.GRPCInferenceService', 'lepton.v1.ModelService']) {
    assert.ok(services.includes(s), `${s} not in ${services}`);
  }
  assert.deepEqual(methodsOf(stdout, 'lepton.v1.ModelService'),
                   declared(PROTO_PATH, 'lepton.v1.ModelService'));
  assert.equal(methodsOf(stdout, 'lepton.v1.ModelService').length, 12);
  const protos = path.join(path.dirname(PROTO_PATH), '..', '..');
  assert.deepEqual(methodsOf(stdout, 'inference.GRPCInferenceService'),
                   declared(path.join(protos, 'inference', 'grpc_predict_v2.proto'),
                            'inference.GRPCInferenceService'));
  // gRPC's health service too (the server links its descriptors for this).
  assert.deepEqual(methodsOf(stdout, 'grpc.health.v1.Health'),
                   declared(path.join(protos, 'grpc', 'health', 'v1', 'health.proto'),
                            'grpc.health.v1.Health'));
  assert.doesNotMatch(stdout, /no descriptors/);
});

test('calls a method by name with JSON, from the descriptors the server sends', async () => {
  const name = `node-discover-${process.pid}`;
  await lepton.createModel({ name, spec: { type: 'LOGISTIC_REGRESSION', num_features: 3 } });
  await lepton.update({ model: name, examples: [
    { features: { dense: [1, 0, 0] }, label: 1 }, { features: { dense: [0, 1, 0] }, label: 0 }] });

  const get = await discover('call', 'lepton.v1.ModelService/GetModel', JSON.stringify({ name }));
  assert.equal(get.status, 0, get.stderr);
  const info = JSON.parse(get.stdout);
  assert.equal(info.name, name);
  assert.equal(info.version, '2');             // 64-bit integers as strings
  assert.equal(info.examples_seen, '2');
  assert.equal(info.spec.type, 'LOGISTIC_REGRESSION');
  assert.deepEqual(info.retained_versions, ['1', '2']);

  const predict = await discover('call', 'lepton.v1.ModelService/Predict', JSON.stringify(
      { model: name, instances: [{ dense: [1, 0, 0] }] }));
  assert.equal(predict.status, 0, predict.stderr);
  const answer = JSON.parse(predict.stdout);
  const direct = await lepton.predict({ model: name, instances: [{ dense: [1, 0, 0] }] });
  assert.equal(answer.version, '2');
  assert.equal(answer.predictions[0].value, direct.predictions[0].value);

  const health = await discover('call', 'grpc.health.v1.Health/Check', '{"service": ""}');
  assert.equal(health.status, 0, health.stderr);
  assert.deepEqual(JSON.parse(health.stdout), { status: 'SERVING' });

  const ready = await discover('call', 'inference.GRPCInferenceService/ModelReady',
                               JSON.stringify({ name }));
  assert.equal(ready.status, 0, ready.stderr);
  assert.deepEqual(JSON.parse(ready.stdout), { ready: true });

  const missing = await discover('call', 'lepton.v1.ModelService/GetModel', '{"name": "nope"}');
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, 'discover.js: model "nope" not found (NOT_FOUND)\n');

  const streaming = await discover('call', 'lepton.v1.ModelService/WatchModel', '{}');
  assert.equal(streaming.status, 1);
  assert.match(streaming.stderr, /streams; only unary calls/);

  const unknown = await discover('call', 'lepton.v1.ModelService/Train', '{}');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no method lepton\.v1\.ModelService\/Train/);
  await lepton.deleteModel({ name });
});
