// A small Lepton client for Node.js: lepton.v1.ModelService with promises.
//
// proto/lepton/v1/lepton.proto is loaded when this module is first used, by
// @grpc/proto-loader; no generated code. Messages are plain objects with the
// proto's field names (snake_case), enums as their names
// ("SOFTMAX_REGRESSION"), 64-bit integers as numbers and every field present
// with its default. A failed call rejects with @grpc/grpc-js's error: `code`
// (a grpc.status value), `details` (the server's message, which starts with
// the path of the field at fault, docs/api.md#errors).
//
//   const { connect } = require('./lepton');
//   const lepton = connect('localhost:50051');
//   const info = await lepton.getModel({ name: 'fm' });
//   lepton.close();
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The proto of this checkout; LEPTON_PROTO names another copy.
const PROTO_PATH = process.env.LEPTON_PROTO ||
    path.resolve(__dirname, '..', '..', 'proto', 'lepton', 'v1', 'lepton.proto');

const LOADER_OPTIONS = {
  keepCase: true,   // the proto's field names: num_features, not numFeatures
  longs: Number,    // versions and counters are far below 2^53
  enums: String,
  defaults: true,  // every field, at its default when unset
};

let service = null;

// lepton.v1.ModelService's client constructor, from the proto.
function modelService() {
  if (service === null) {
    const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    service = grpc.loadPackageDefinition(definition).lepton.v1.ModelService;
  }
  return service;
}

// The unary calls, as promise-returning methods named in camelCase.
const UNARY = ['CreateModel', 'GetModel', 'ListModels', 'DeleteModel', 'Predict',
               'Update', 'Rollback', 'AddClasses', 'ExportModel', 'ImportModel'];

// connect(target, { deadlineMs = 30000, credentials, token }) returns an
// object with a method per unary call (createModel(request), ...), each
// resolving to the response, and close(). `credentials` defaults to
// plaintext (grpc.credentials.createSsl(...) for TLS); `token` is sent as
// `authorization: Bearer <token>` (docs/operations.md#tls-and-tokens).
function connect(target, { deadlineMs = 30000, credentials, token } = {}) {
  const Service = modelService();
  const stub = new Service(target, credentials || grpc.credentials.createInsecure());
  const client = { stub, close: () => stub.close() };
  for (const method of UNARY) {
    const name = method[0].toLowerCase() + method.slice(1);
    client[name] = (request, { deadline } = {}) => new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (token) metadata.set('authorization', `Bearer ${token}`);
      const options = { deadline: deadline || Date.now() + deadlineMs };
      stub[method](request, metadata, options, (error, response) => {
        if (error) reject(error);
        else resolve(response);
      });
    });
  }
  return client;
}

// The name of a grpc.status code: statusName(5) === 'NOT_FOUND'.
function statusName(code) {
  return grpc.status[code] ?? String(code);
}

module.exports = { connect, statusName, PROTO_PATH, LOADER_OPTIONS, grpc };
