// The Node.js client against a real lepton_server at $LEPTON_TARGET
// (run-tests.sh starts one on a free loopback port): example.js end to end,
// versions, the shape and range of predictions, learning, and errors with
// their gRPC codes. `node --test test/`.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { after, test } = require('node:test');

const { connect, grpc } = require('../lepton');
const { batch, CENTERS } = require('../example');

const TARGET = process.env.LEPTON_TARGET;
if (!TARGET) {
  throw new Error('LEPTON_TARGET must name a lepton_server (host:port); ' +
                  'clients/node/run-tests.sh starts one and sets it');
}

const lepton = connect(TARGET, { deadlineMs: 20000 });
after(() => lepton.close());

// A model name unique to this process and test.
function modelName(suffix) {
  return `node-test-${process.pid}-${suffix}`;
}

async function createSoftmax(name) {
  return lepton.createModel({
    name,
    spec: { type: 'SOFTMAX_REGRESSION', num_features: 2, num_classes: 3,
            optimizer: { kind: 'SGD', learning_rate: 0.5 } },
  });
}

// Resolves to the gRPC error the promise rejects with; fails if it resolves.
async function grpcError(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('the call succeeded; an error was expected');
}

test('example.js runs end to end and prints each version', async () => {
  const name = modelName('example');
  const stdout = await new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'example.js'), name],
             { env: { ...process.env, LEPTON_TARGET: TARGET }, timeout: 60000 },
             (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`))
                                         : resolve(out)));
  });
  const lines = stdout.trim().split('\n');
  assert.equal(lines[0], `created ${name}: SOFTMAX_REGRESSION, version 1`);
  const versions = lines.filter((l) => l.startsWith('update:'))
      .map((l) => Number(/version (\d+)/.exec(l)[1]));
  assert.deepEqual(versions, [2, 3, 4, 5, 6]);
  assert.ok(lines.includes('predict: version 6'), stdout);
  // Each center is predicted as its own class.
  const classes = lines.filter((l) => l.includes('-> class'))
      .map((l) => Number(/-> class (\d+)/.exec(l)[1]));
  assert.deepEqual(classes, [0, 1, 2]);

  // The server agrees with what it printed.
  const info = await lepton.getModel({ name });
  assert.equal(info.version, 6);
  assert.equal(info.examples_seen, 150);
  assert.equal(info.updates, 5);

  // A second run finds the name taken: exit status 1, the code on stderr.
  const second = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, '..', 'example.js'), name],
             { env: { ...process.env, LEPTON_TARGET: TARGET }, timeout: 60000 },
             (error, out, err) => resolve({ status: error ? error.code : 0, err }));
  });
  assert.equal(second.status, 1);
  assert.match(second.err, /^example\.js: model ".*" already exists \(ALREADY_EXISTS\)\n$/);
  await lepton.deleteModel({ name });
});

test('each update publishes the next version; a pinned version answers as it was',
     async () => {
       const name = modelName('versions');
       const created = await createSoftmax(name);
       assert.equal(created.version, 1);
       assert.equal(created.spec.type, 'SOFTMAX_REGRESSION');
       assert.equal(created.spec.num_classes, 3);

       const versions = [];
       for (let seed = 1; seed <= 3; seed++) {
         const update = await lepton.update({ model: name, examples: batch(seed) });
         assert.equal(update.examples, 30);
         assert.ok(Number.isFinite(update.loss_before) && update.loss_before > 0);
         versions.push(update.version);
       }
       assert.deepEqual(versions, [2, 3, 4]);

       const info = await lepton.getModel({ name });
       assert.equal(info.version, 4);
       assert.deepEqual(info.retained_versions, [1, 2, 3, 4]);

       const instances = CENTERS.map(([x, y]) => ({ dense: [x, y] }));
       const newest = await lepton.predict({ model: name, instances });
       const first = await lepton.predict({ model: name, instances, version: 1 });
       assert.equal(newest.version, 4);
       assert.equal(first.version, 1);
       // Version 1 has all weights zero: every class equally likely.
       for (const p of first.predictions) {
         for (const q of p.probabilities) assert.ok(Math.abs(q - 1 / 3) < 1e-6, `${q}`);
       }
       assert.notDeepEqual(newest.predictions, first.predictions);
       await lepton.deleteModel({ name });
     });

test('predictions have one row per instance, K probabilities summing to 1, ' +
     'the arg-max as label', async () => {
  const name = modelName('shape');
  await createSoftmax(name);
  for (let seed = 1; seed <= 10; seed++) {
    await lepton.update({ model: name, examples: batch(seed) });
  }
  const test = batch(1000, 60);
  const answer = await lepton.predict({ model: name, instances: test.map((e) => e.features) });
  assert.equal(answer.version, 11);
  assert.equal(answer.predictions.length, 60);
  let right = 0;
  answer.predictions.forEach((p, i) => {
    assert.equal(p.probabilities.length, 3);
    for (const q of p.probabilities) assert.ok(q >= 0 && q <= 1, `${q}`);
    const sum = p.probabilities.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `sum ${sum}`);
    const argmax = p.probabilities.indexOf(Math.max(...p.probabilities));
    assert.equal(p.label, argmax);
    assert.equal(p.value, p.probabilities[p.label]);
    if (p.label === test[i].label) right++;
  });
  // Three well separated clusters: ten batches learn them.
  assert.ok(right >= 57, `${right} of 60 right`);
  await lepton.deleteModel({ name });
});

test('errors carry the gRPC code and the field path; a rejected update changes nothing',
     async () => {
       const name = modelName('errors');
       await createSoftmax(name);

       const taken = await grpcError(createSoftmax(name));
       assert.equal(taken.code, grpc.status.ALREADY_EXISTS);

       const examples = batch(1, 3);
       examples[1].label = 3;  // K = 3: classes 0..2
       const label = await grpcError(lepton.update({ model: name, examples }));
       assert.equal(label.code, grpc.status.INVALID_ARGUMENT);
       assert.match(label.details, /^examples\[1\]\.label: /);

       const width = await grpcError(lepton.predict({
         model: name, instances: [{ dense: [1, 2] }, { dense: [1, 2, 3] }] }));
       assert.equal(width.code, grpc.status.INVALID_ARGUMENT);
       assert.match(width.details, /^instances\[1\]/);

       const info = await lepton.getModel({ name });
       assert.equal(info.version, 1);
       assert.equal(info.examples_seen, 0);

       const missing = await grpcError(lepton.predict({
         model: `${name}-missing`, instances: [{ dense: [1, 2] }] }));
       assert.equal(missing.code, grpc.status.NOT_FOUND);
       assert.match(missing.details, /not found/);

       const evicted = await grpcError(lepton.predict({
         model: name, instances: [{ dense: [1, 2] }], version: 99 }));
       assert.equal(evicted.code, grpc.status.NOT_FOUND);

       const spec = await grpcError(lepton.createModel({
         name: `${name}-bad`, spec: { type: 'LINEAR_REGRESSION', num_features: 0 } }));
       assert.equal(spec.code, grpc.status.INVALID_ARGUMENT);
       assert.match(spec.details, /^spec\.num_features/);

       await lepton.deleteModel({ name });
       const deleted = await grpcError(lepton.getModel({ name }));
       assert.equal(deleted.code, grpc.status.NOT_FOUND);
     });
