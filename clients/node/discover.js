// grpcurl-style discovery through the server's reflection: no .proto file
// needed. The server is $LEPTON_TARGET (default localhost:50051), plaintext.
//
//   node discover.js                                  # every service and its methods
//   node discover.js call SERVICE/METHOD [JSON]       # a unary call; prints the answer as JSON
//   node discover.js call lepton.v1.ModelService/GetModel '{"name": "fm"}'
//
// The services come from grpc.reflection.v1alpha.ServerReflection (the
// version Debian's gRPC 1.51 serves), and their messages from the
// FileDescriptorProtos it sends, loaded with @grpc/proto-loader. JSON field
// names are the proto's (snake_case); 64-bit integers print as strings and
// bytes as base64, as in protobuf's JSON mapping; fields at their default are
// left out, as grpcurl does.
'use strict';

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

// The part of grpc/reflection/v1alpha/reflection.proto this file uses, in
// protobuf.js's JSON form (field numbers as in gRPC's file).
const REFLECTION_JSON = {
  nested: { grpc: { nested: { reflection: { nested: { v1alpha: { nested: {
    ServerReflection: { methods: { ServerReflectionInfo: {
      requestType: 'ServerReflectionRequest', requestStream: true,
      responseType: 'ServerReflectionResponse', responseStream: true } } },
    ServerReflectionRequest: { fields: {
      host: { type: 'string', id: 1 },
      file_containing_symbol: { type: 'string', id: 4 },
      list_services: { type: 'string', id: 7 } } },
    ServerReflectionResponse: { fields: {
      file_descriptor_response: { type: 'FileDescriptorResponse', id: 4 },
      list_services_response: { type: 'ListServiceResponse', id: 6 },
      error_response: { type: 'ErrorResponse', id: 7 } } },
    FileDescriptorResponse: { fields: {
      file_descriptor_proto: { rule: 'repeated', type: 'bytes', id: 1 } } },
    ListServiceResponse: { fields: {
      service: { rule: 'repeated', type: 'ServiceResponse', id: 1 } } },
    ServiceResponse: { fields: { name: { type: 'string', id: 1 } } },
    ErrorResponse: { fields: {
      error_code: { type: 'int32', id: 1 },
      error_message: { type: 'string', id: 2 } } },
  } } } } } } },
};

const OPTIONS = { keepCase: true, longs: String, enums: String, bytes: String };

// Sends `requests` on one ServerReflectionInfo stream; resolves to the answers.
function ask(reflection, requests) {
  return new Promise((resolve, reject) => {
    const answers = [];
    const call = reflection.ServerReflectionInfo({ deadline: Date.now() + 30000 });
    call.on('data', (answer) => answers.push(answer));
    call.on('error', reject);
    call.on('end', () => resolve(answers));
    for (const request of requests) call.write(request);
    call.end();
  });
}

// A FileDescriptorSet (field 1: repeated FileDescriptorProto) of the files.
function descriptorSet(files) {
  const parts = [];
  for (const file of files) {
    const length = [];
    for (let n = file.length; ; n >>>= 7) {
      if (n < 0x80) { length.push(n); break; }
      length.push((n & 0x7f) | 0x80);
    }
    parts.push(Buffer.from([0x0a, ...length]), file);
  }
  return Buffer.concat(parts);
}

// The services the server lists, and a package definition of every one
// whose descriptors it sends: { names, definition, missing }.
async function discover(target) {
  const Reflection = grpc.loadPackageDefinition(protoLoader.fromJSON(REFLECTION_JSON))
      .grpc.reflection.v1alpha.ServerReflection;
  const reflection = new Reflection(target, grpc.credentials.createInsecure());
  try {
    const [listing] = await ask(reflection, [{ list_services: '' }]);
    const names = listing.list_services_response.service.map((s) => s.name).sort();
    const answers = await ask(reflection, names.map((name) => ({ file_containing_symbol: name })));
    const files = new Map();  // each file once: the files of a service include its imports
    const missing = [];
    answers.forEach((answer, i) => {
      if (answer.error_response) {
        missing.push(`${names[i]}: ${answer.error_response.error_message}`);
        return;
      }
      for (const file of answer.file_descriptor_response.file_descriptor_proto) {
        files.set(file.toString('base64'), file);
      }
    });
    const definition = protoLoader.loadFileDescriptorSetFromBuffer(
        descriptorSet([...files.values()]), OPTIONS);
    return { names, definition, missing };
  } finally {
    reflection.close();
  }
}

function typeName(type) {
  return type.type.name;
}

async function list(target) {
  const { names, definition, missing } = await discover(target);
  for (const name of names) {
    console.log(name);
    for (const [method, d] of Object.entries(definition[name] || {})) {
      const request = (d.requestStream ? 'stream ' : '') + typeName(d.requestType);
      const response = (d.responseStream ? 'stream ' : '') + typeName(d.responseType);
      console.log(`  ${method}(${request}) returns (${response})`);
    }
  }
  for (const line of missing) console.log(`no descriptors for ${line}`);
}

// Calls a unary method by its full name with a JSON request.
async function call(target, fullMethod, json) {
  const [service, method] = fullMethod.replace(/^\//, '').split('/');
  const { definition } = await discover(target);
  const methods = definition[service];
  if (!methods || !methods[method]) {
    throw new Error(`the server has no method ${service}/${method}`);
  }
  const d = methods[method];
  if (d.requestStream || d.responseStream) {
    throw new Error(`${service}/${method} streams; only unary calls are made here`);
  }
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      client.makeUnaryRequest(d.path, d.requestSerialize, d.responseDeserialize,
                              JSON.parse(json), new grpc.Metadata(),
                              { deadline: Date.now() + 30000 },
                              (error, answer) => (error ? reject(error) : resolve(answer)));
    });
  } finally {
    client.close();
  }
}

module.exports = { discover, call };

if (require.main === module) {
  const target = process.env.LEPTON_TARGET || 'localhost:50051';
  const [command = 'list', method, json = '{}'] = process.argv.slice(2);
  const run = command === 'list' ? list(target)
      : command === 'call' && method
        ? call(target, method, json).then((answer) => console.log(JSON.stringify(answer, null, 2)))
        : Promise.reject(new Error('usage: node discover.js [list | call SERVICE/METHOD [JSON]]'));
  run.catch((error) => {
    const code = error.code === undefined ? '' : ` (${grpc.status[error.code] || error.code})`;
    console.error(`discover.js: ${error.details || error.message}${code}`);
    process.exitCode = 1;
  });
}
