// Small helpers every page uses: building elements (never from HTML text, so
// a name read from the API cannot inject markup), formatting the API's
// values, tables, and sections that show their own error.

/** h('a', {href: '#/x'}, 'text', child…): an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'rect', 'line', 'polyline', 'circle', 'text', 'title', 'path'].includes(tag);
  const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The enum value's own name, for people: 'HEALTH_BAND_RED' → 'Red'. */
export function label(value, prefix) {
  if (!value) return '—';
  let text = String(value);
  if (prefix && text.startsWith(prefix)) text = text.slice(prefix.length);
  text = text.replace(/_/g, ' ').toLowerCase();
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return text.replace(/\b(Smb|Csm|Ae|Revops|Cross sell|Mid market)\b/g, (word) => WORDS[word]);
}

// Words the enum names spell in capitals or with a hyphen.
const WORDS = {
  Smb: 'SMB', Csm: 'CSM', Ae: 'AE', Revops: 'RevOps', 'Cross sell': 'Cross-sell', 'Mid market': 'Mid-market',
};

/** A Money message as "USD 1,234.50"; the amount is a decimal string, never a float. */
export function money(value) {
  if (!value || value.amount === undefined) return value && value.currencyCode ? `${value.currencyCode} 0` : '—';
  return `${value.currencyCode} ${groupDigits(value.amount)}`;
}

/** "1234567.50" → "1,234,567.50", on the string itself. */
export function groupDigits(amount) {
  const [whole, fraction] = String(amount).split('.');
  const sign = whole.startsWith('-') ? '-' : '';
  const digits = whole.replace('-', '').replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction !== undefined ? `${sign}${digits}.${fraction}` : `${sign}${digits}`;
}

/** The number in a Money or a decimal string, for charts only. */
export function num(value) {
  if (value === undefined || value === null || value === '') return 0;
  const n = Number(typeof value === 'object' ? value.amount : value);
  return Number.isFinite(n) ? n : 0;
}

/** A ratio "0.2875" as "28.75%"; empty stays "—". */
export function ratio(value) {
  if (value === undefined || value === null || value === '') return '—';
  return `${(Number(value) * 100).toFixed(2)}%`;
}

/** A percent "72.5" as "72.5%". */
export function percent(value) {
  if (value === undefined || value === null || value === '') return '—';
  return `${value}%`;
}

/** A timestamp's date "2026-11-25" (UTC, as the API keeps it). */
export function day(timestamp) {
  return timestamp ? String(timestamp).slice(0, 10) : '—';
}

export function band(value) {
  const name = value ? String(value).replace('HEALTH_BAND_', '') : 'NONE';
  const known = ['RED', 'YELLOW', 'GREEN'].includes(name) ? name : 'NONE';
  return h('span', { class: `band band-${known}` }, known === 'NONE' ? 'No score' : label(name));
}

/** A name and, under it, the id it stands for. */
export function named(name, id, href) {
  const text = name || id || '—';
  return [href ? h('a', { href }, text) : text, id && name ? h('span', { class: 'id' }, id) : null];
}

export function accountLink(accounts, id) {
  const account = accounts && accounts.get(id);
  return named(account ? account.name : '', id, `#/account/${encodeURIComponent(id)}`);
}

export function productName(products, id) {
  const product = products && products.get(id);
  return named(product ? product.name : '', id);
}

/**
 * A table: columns are [heading, cell(row), {num: true}?]; rows an array.
 * `id` lets tests and links find it; an empty list says so.
 */
export function table(caption, columns, rows, { id, foot } = {}) {
  if (!rows.length) return h('p', { class: 'empty', id }, `${caption}: none.`);
  return h('div', { class: 'scroll' },
    h('table', { id },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map(([heading, , opts]) =>
        h('th', { scope: 'col', class: opts && opts.num ? 'num' : null }, heading)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, cell, opts]) =>
        h('td', { class: opts && opts.num ? 'num' : null }, cell(row)))))),
      foot ? h('tfoot', {}, h('tr', {}, foot.map((cell, i) =>
        h('td', { class: columns[i] && columns[i][2] && columns[i][2].num ? 'num' : null }, cell)))) : null));
}

/** Figures in a row: [[label, value, id?], …]. */
export function figures(items) {
  return h('ul', { class: 'figures' }, items.map(([name, value, id]) =>
    h('li', {}, h('span', { class: 'label' }, name), h('span', { class: 'value', id }, value))));
}

/** What a refused call says, as the API said it (PERMISSION_DENIED names the rule). */
export function errorBox(err) {
  const code = err && err.code ? String(err.code).toUpperCase() : 'ERROR';
  const title = code === 'PERMISSION_DENIED' ? 'Permission denied'
    : code === 'UNAUTHENTICATED' ? 'Not signed in, or the key is not valid' : 'The server refused';
  return h('div', { class: 'error', role: 'alert', 'data-code': code },
    h('strong', {}, `${title} (${code})`), err && err.message ? err.message : String(err));
}

/**
 * A section with a heading whose body `fill` builds; while it runs the
 * section says so, and a refusal shows in the section, not over the page.
 */
export function section(title, fill, { id } = {}) {
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const node = h('section', { class: 'card', id, 'aria-busy': 'true' }, h('h2', {}, title), body);
  node.ready = Promise.resolve()
    .then(fill)
    .then((content) => { body.replaceChildren(...[content].flat(Infinity).filter(Boolean)); })
    .catch((err) => { body.replaceChildren(errorBox(err)); })
    .finally(() => node.removeAttribute('aria-busy'));
  return node;
}

/** Today in UTC, "YYYY-MM-DD". */
export function today() {
  return new Date().toISOString().slice(0, 10);
}

/** "YYYY-MM" plus `n` months. */
export function addMonths(month, n) {
  const [y, m] = month.split('-').map(Number);
  const date = new Date(Date.UTC(y, m - 1 + n, 1));
  return date.toISOString().slice(0, 7);
}

/** "YYYY-MM-DD" plus `n` days. */
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** A filter form whose values go into the address's query (so views are links). */
export function filterForm(fields, values, onApply) {
  const form = h('form', { class: 'filters', role: 'search' },
    fields.map(([name, text, options]) => h('label', {}, text,
      options === 'month' || options === 'date'
        ? h('input', { type: options, name, value: values[name] || '' })
        : h('select', { name }, options.map(([value, optionText]) =>
          h('option', { value, selected: (values[name] || '') === value }, optionText))))),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = {};
    for (const [name] of fields) chosen[name] = form.elements[name].value;
    onApply(chosen);
  });
  return form;
}
