// Calls of the server's HTTP/JSON API (the Connect protocol's unary form:
// POST /<package>.<Service>/<Method> with the request as JSON), with the key
// the person signed in with. The key lives in sessionStorage only: never in
// an address, a cookie or anything the server logs.

const KEY = 'expansion.apiKey';

export const HEALTH = 'expansion.health.v1.AccountHealthService';
export const PIPELINE = 'expansion.pipeline.v1.OpportunityPipelineService';
export const CREDIT = 'expansion.credit.v1.CompensationCreditService';

export function apiKey() {
  return sessionStorage.getItem(KEY) || '';
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key.trim());
  else sessionStorage.removeItem(KEY);
}

/** A refused or failed call: Connect's error code and the server's message. */
export class ApiError extends Error {
  constructor(code, message, method) {
    super(message);
    this.code = code;
    this.method = method;
  }
}

/** One unary call; resolves to the response message as JSON. */
export async function call(service, method, request = {}) {
  const headers = { 'content-type': 'application/json', 'connect-protocol-version': '1' };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(`/${service}/${method}`, {
      method: 'POST', headers, body: JSON.stringify(request), credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError('unavailable', `the server did not answer: ${err.message}`, method);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(body.code || 'unknown', body.message || response.statusText, method);
  }
  return body;
}

/** Every page of a list method: `field` names the repeated field. */
export async function listAll(service, method, request, field) {
  const items = [];
  let pageToken = '';
  for (let page = 0; page < 100; page += 1) {
    const answer = await call(service, method, { ...request, pageSize: 1000, pageToken });
    items.push(...(answer[field] || []));
    pageToken = answer.nextPageToken || '';
    if (!pageToken) break;
  }
  return items;
}

// Names beside ids: accounts and products, read once per page view and
// shared by the sections that need them.
let cache = null;

export function forgetNames() {
  cache = null;
}

/** Maps of accounts and products by id (ListAccounts, ListProducts). */
export function names() {
  if (!cache) {
    cache = Promise.all([
      listAll(HEALTH, 'ListAccounts', {}, 'accounts'),
      listAll(HEALTH, 'ListProducts', {}, 'products'),
    ]).then(([accounts, products]) => ({
      accounts: new Map(accounts.map((a) => [a.accountId, a])),
      products: new Map(products.map((p) => [p.productId, p])),
    }));
    // A failed read is not kept: the next page view asks again.
    cache.catch(() => { cache = null; });
  }
  return cache;
}
