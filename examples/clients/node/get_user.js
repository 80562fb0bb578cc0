#!/usr/bin/env node
// Calls users.v1.UserService/GetUser with @grpc/grpc-js (proto loaded at run time by
// @grpc/proto-loader) and prints the user as proto3 JSON with proto field names, or
// {"error": {"code", "message"}} and exit status 1 on a gRPC error; bad usage exits 2.
//
//   node get_user.js --target 127.0.0.1:50051 --token "$TOKEN" --user-id "$ID"
//
// Each option falls back to PORTICO_USERS_TARGET, PORTICO_TOKEN and PORTICO_USER_ID.
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const DEADLINE_MS = 5000;

// Plain objects with only the fields that are set (like the proto3 JSON mapping), 64-bit integers and
// bytes as strings, enums by name.
const LOAD_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
  // users.proto imports google/api (HTTP rules) and buf/validate (validation rules): both vendored.
  includeDirs: [
    PROTO_ROOT,
    path.join(PROTO_ROOT, 'third_party', 'googleapis'),
    path.join(PROTO_ROOT, 'third_party', 'protovalidate'),
  ],
};

function printJson(value) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// google.protobuf.Timestamp as RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as the Python
// and Go protobuf runtimes write it.
function timestampToJson({ seconds = '0', nanos = 0 }) {
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  if (nanos === 0) return `${base}Z`;
  const digits = String(nanos).padStart(9, '0');
  const fraction = nanos % 1e6 === 0 ? digits.slice(0, 3) : nanos % 1e3 === 0 ? digits.slice(0, 6) : digits;
  return `${base}.${fraction}Z`;
}

// The proto3 JSON form of a decoded message, fields in declaration order. protobufjs has no JSON
// mapping for Timestamp, so walk the message's descriptor (proto-loader keeps it in `type`).
function messageToJson(packageDefinition, typeName, message) {
  if (typeName === 'google.protobuf.Timestamp') return timestampToJson(message);
  const out = {};
  for (const field of packageDefinition[typeName].type.field) {
    if (!Object.prototype.hasOwnProperty.call(message, field.name)) continue;
    const convert = (value) =>
      field.type === 'TYPE_MESSAGE'
        ? messageToJson(packageDefinition, field.typeName, value)
        : typeof value === 'number' && !Number.isFinite(value)
          ? String(value) // NaN, Infinity, -Infinity
          : value;
    const value = message[field.name];
    out[field.name] = Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return out;
}

function usage(message) {
  process.stderr.write(`get_user: ${message}\n`);
  process.exit(2);
}

function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string', default: process.env.PORTICO_USERS_TARGET ?? '' },
        token: { type: 'string', default: process.env.PORTICO_TOKEN ?? '' },
        'user-id': { type: 'string', default: process.env.PORTICO_USER_ID ?? '' },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  if (!values.target || !values['user-id']) {
    usage('--target and --user-id (or PORTICO_USERS_TARGET, PORTICO_USER_ID) are required');
  }

  const packageDefinition = protoLoader.loadSync('users/v1/users.proto', LOAD_OPTIONS);
  const { UserService } = grpc.loadPackageDefinition(packageDefinition).users.v1;
  const client = new UserService(values.target, grpc.credentials.createInsecure());

  const metadata = new grpc.Metadata();
  if (values.token) metadata.set('authorization', `Bearer ${values.token}`);

  client.GetUser(
    { user_id: values['user-id'] },
    metadata,
    { deadline: Date.now() + DEADLINE_MS },
    (error, response) => {
      client.close();
      if (error) {
        printJson({ error: { code: grpc.status[error.code] ?? 'UNKNOWN', message: error.details ?? '' } });
        process.exitCode = 1;
        return;
      }
      printJson(response.user ? messageToJson(packageDefinition, 'users.v1.User', response.user) : {});
    },
  );
}

main();
