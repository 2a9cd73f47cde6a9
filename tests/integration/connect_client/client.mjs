// A real Connect client (connect-es on Node) against a running server, with
// the descriptors loaded at run time from the encoded FileDescriptorSet the
// server is built from: no generated code.
//
// node client.mjs DESCRIPTOR_SET_FILE BASE_URL API_KEY
// prints one JSON object: per transport, what the calls answered.

import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const [descriptorPath, baseUrl, apiKey] = process.argv.slice(2);
const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(descriptorPath)),
);
const service = registry.getService("expansion.health.v1.AccountHealthService");
const segment = registry
  .getEnum("expansion.common.v1.Segment")
  .values.find((v) => v.name === "SEGMENT_MID_MARKET").number;
const badRequest = registry.getMessage("google.rpc.BadRequest");

const authorize = (next) => async (req) => {
  req.header.set("authorization", `Bearer ${apiKey}`);
  return next(req);
};
const interceptors = [authorize];
const transports = {
  "connect-json-http1.1": createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "connect-json-http2": createConnectTransport({ baseUrl, httpVersion: "2", interceptors }),
  "connect-binary-http1.1": createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    useBinaryFormat: true,
    interceptors,
  }),
  "grpc-web-http1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
};

const results = {};
for (const [name, transport] of Object.entries(transports)) {
  const client = createClient(service, transport);
  const upserted = await client.upsertAccount({
    externalRef: { system: "salesforce", id: `001-${name}` },
    name: `Acme ${name}`,
    segment,
    customerSince: "2024-01-01",
  });
  const read = await client.getAccount({ accountId: upserted.account.accountId });
  const result = {
    created: upserted.created,
    accountId: read.account.accountId,
    name: read.account.name,
  };
  try {
    await client.upsertAccount({
      externalRef: { system: "salesforce", id: `001-${name}` },
      name: "",
    });
    result.error = "none";
  } catch (err) {
    const error = ConnectError.from(err);
    result.error = Code[error.code];
    result.fields = error.findDetails(badRequest).flatMap((d) => d.fieldViolations.map((v) => v.field));
  }
  results[name] = result;
}
console.log(JSON.stringify(results));
