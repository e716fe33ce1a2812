// connect()'s `token` against a lepton_server with access control
// ($LEPTON_AUTH_TARGET, started by run-tests.sh with --auth_tokens=
// $LEPTON_AUTH_TOKENS, a file of '<token> <role>' lines): the token goes in
// `authorization: Bearer`, and the server's roles decide.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { test } = require('node:test');

const { connect, grpc } = require('../lepton');

const TARGET = process.env.LEPTON_AUTH_TARGET;
const TOKENS = process.env.LEPTON_AUTH_TOKENS;
if (!TARGET || !TOKENS) {
  throw new Error('LEPTON_AUTH_TARGET and LEPTON_AUTH_TOKENS must name a lepton_server ' +
                  'with --auth_tokens and its file; clients/node/run-tests.sh sets them');
}
// role -> token
const token = Object.fromEntries(fs.readFileSync(TOKENS, 'utf8').trim().split('\n')
    .map((line) => line.split(/\s+/).reverse()));

async function codeOf(promise) {
  try {
    await promise;
  } catch (error) {
    return error.code;
  }
  return grpc.status.OK;
}

test('a token is sent as a bearer token, and its role decides', async () => {
  const name = `node-tokens-${process.pid}`;
  const spec = { type: 'LOGISTIC_REGRESSION', num_features: 2 };
  const instances = [{ dense: [1, 0] }];
  const examples = [{ features: { dense: [1, 0] }, label: 1 }];
  const anonymous = connect(TARGET);
  const reader = connect(TARGET, { token: token.reader });
  const admin = connect(TARGET, { token: token.admin });
  const wrong = connect(TARGET, { token: `${token.admin}x` });
  try {
    assert.equal(await codeOf(anonymous.listModels({})), grpc.status.UNAUTHENTICATED);
    assert.equal(await codeOf(wrong.listModels({})), grpc.status.UNAUTHENTICATED);

    const created = await admin.createModel({ name, spec });
    assert.equal(created.version, 1);
    assert.equal((await admin.update({ model: name, examples })).version, 2);

    const answer = await reader.predict({ model: name, instances });
    assert.equal(answer.version, 2);
    const denied = await reader.update({ model: name, examples }).catch((e) => e);
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    assert.match(denied.details, /needs role writer or higher; the caller's token has role reader/);
    assert.equal((await reader.getModel({ name })).version, 2);  // nothing applied

    await admin.deleteModel({ name });
  } finally {
    for (const client of [anonymous, reader, admin, wrong]) client.close();
  }
});
