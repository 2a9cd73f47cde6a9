// Charts as inline SVG, drawn by small functions: bars, grouped bars, a
// line, win rates against their benchmark band, the MRR bridge. Each chart
// is an image with a text alternative; the figures are also in a table
// beside it, so nothing is only in a picture.

import { h } from './ui.js';

const WIDTH = 720;
export const COLORS = {
  red: '#c0392b', yellow: '#c99700', green: '#2e8b57', grey: '#9aa3b0', blue: '#2156a5',
  teal: '#138086', purple: '#7d3c98', orange: '#d35400', band: '#cfe3d6',
};

function frame(title, height, children) {
  return h('svg', {
    class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': title,
  }, h('title', {}, title), children);
}

/** A rounded axis maximum above `value`: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function short(n) {
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(n * 100) / 100);
}

/** Vertical bars: items [{label, value, color}]. */
export function barChart(title, items, { format = short } = {}) {
  const height = 220; const left = 40; const bottom = 30; const top = 16;
  const max = niceMax(Math.max(...items.map((i) => i.value), 0));
  const plot = height - bottom - top;
  const slot = (WIDTH - left) / Math.max(items.length, 1);
  return frame(title, height, [
    h('line', { class: 'axis', x1: left, y1: height - bottom, x2: WIDTH, y2: height - bottom }),
    h('text', { x: 2, y: top + 4 }, format(max)),
    items.map((item, i) => {
      const barHeight = (item.value / max) * plot;
      const x = left + i * slot + slot * 0.2;
      const y = height - bottom - barHeight;
      return h('g', {},
        h('rect', { x, y, width: slot * 0.6, height: barHeight, fill: item.color || COLORS.blue },
          h('title', {}, `${item.label}: ${format(item.value)}`)),
        h('text', { x: x + slot * 0.3, y: y - 4, 'text-anchor': 'middle' }, format(item.value)),
        h('text', { x: x + slot * 0.3, y: height - 10, 'text-anchor': 'middle' }, item.label));
    }),
  ]);
}

/**
 * Grouped bars: groups [{label, values: [number…]}] with series
 * [{name, color}] naming each value. Values may be negative.
 */
export function groupedBarChart(title, series, groups, { format = short } = {}) {
  const height = 240; const left = 44; const bottom = 30; const top = 16;
  const all = groups.flatMap((g) => g.values);
  const max = niceMax(Math.max(...all, 0));
  const min = -niceMax(Math.max(...all.map((v) => -v), 0)) * (Math.min(...all, 0) < 0 ? 1 : 0);
  const plot = height - bottom - top;
  const y = (v) => top + ((max - v) / (max - min)) * plot;
  const slot = (WIDTH - left) / Math.max(groups.length, 1);
  const bar = (slot * 0.8) / Math.max(series.length, 1);
  return frame(title, height, [
    h('line', { class: 'axis', x1: left, y1: y(0), x2: WIDTH, y2: y(0) }),
    h('text', { x: 2, y: top + 4 }, format(max)),
    min < 0 ? h('text', { x: 2, y: height - bottom }, format(min)) : null,
    groups.map((group, gi) => h('g', {},
      group.values.map((value, si) => {
        const x = left + gi * slot + slot * 0.1 + si * bar;
        return h('rect', {
          x, y: Math.min(y(0), y(value)), width: Math.max(bar - 2, 1),
          height: Math.abs(y(value) - y(0)), fill: series[si].color,
        }, h('title', {}, `${group.label} · ${series[si].name}: ${format(value)}`));
      }),
      h('text', { x: left + gi * slot + slot / 2, y: height - 10, 'text-anchor': 'middle' }, group.label))),
  ]);
}

/** A line: points [{label, value}] in order, on a 0..max scale. */
export function lineChart(title, points, { max, format = short, bands } = {}) {
  const height = 220; const left = 40; const bottom = 30; const top = 16; const right = 16;
  const top1 = max || niceMax(Math.max(...points.map((p) => p.value), 0));
  const plot = height - bottom - top;
  const x = (i) => left + (points.length > 1 ? (i / (points.length - 1)) * (WIDTH - left - right) : (WIDTH - left) / 2);
  const y = (v) => top + (1 - v / top1) * plot;
  const every = Math.ceil(points.length / 8);
  return frame(title, height, [
    // Optional shaded ranges, e.g. the health bands behind a score.
    (bands || []).map((b) => h('rect', {
      x: left, y: y(b.to), width: WIDTH - left - right, height: y(b.from) - y(b.to), fill: b.color, opacity: 0.12,
    })),
    h('line', { class: 'axis', x1: left, y1: height - bottom, x2: WIDTH - right, y2: height - bottom }),
    h('text', { x: 2, y: top + 4 }, format(top1)),
    h('text', { x: 2, y: height - bottom }, '0'),
    h('polyline', {
      points: points.map((p, i) => `${x(i)},${y(p.value)}`).join(' '),
      fill: 'none', stroke: COLORS.blue, 'stroke-width': 2,
    }),
    points.map((p, i) => h('g', {},
      h('circle', { cx: x(i), cy: y(p.value), r: 3, fill: COLORS.blue },
        h('title', {}, `${p.label}: ${format(p.value)}`)),
      i % every === 0 || i === points.length - 1
        ? h('text', { x: x(i), y: height - 10, 'text-anchor': 'middle' }, p.label) : null)),
  ]);
}

/**
 * Win rates against the benchmark band: rows [{label, rate, low, high}]
 * (ratios 0..1; rate null when nothing closed). The band is the shaded
 * range, the bar the win rate.
 */
export function winRateChart(title, rows) {
  const rowHeight = 30; const left = 190; const right = 64; const top = 20;
  const height = top + rows.length * rowHeight + 24;
  const x = (r) => left + r * (WIDTH - left - right);
  return frame(title, height, [
    [0, 0.25, 0.5, 0.75, 1].map((t) => h('g', {},
      h('line', { class: 'grid', x1: x(t), y1: top - 4, x2: x(t), y2: height - 20 }),
      h('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' }, `${t * 100}%`))),
    rows.map((row, i) => {
      const y = top + i * rowHeight;
      return h('g', {},
        h('text', { x: left - 8, y: y + 17, 'text-anchor': 'end' }, row.label),
        row.low !== null ? h('rect', {
          x: x(row.low), y, width: Math.max(x(row.high) - x(row.low), 2), height: rowHeight - 6,
          fill: COLORS.band, stroke: COLORS.green, 'stroke-dasharray': '3 2',
        }, h('title', {}, `benchmark ${Math.round(row.low * 100)}–${Math.round(row.high * 100)}%`)) : null,
        row.rate !== null ? h('rect', {
          x: left, y: y + 8, width: Math.max(x(row.rate) - left, 1), height: 8, fill: COLORS.blue,
        }, h('title', {}, `${row.label}: ${(row.rate * 100).toFixed(1)}%`)) : null,
        h('text', { x: row.rate !== null ? x(row.rate) + 4 : left + 4, y: y + 17 },
          row.rate !== null ? `${(row.rate * 100).toFixed(1)}%` : 'nothing closed'));
    }),
  ]);
}

/** Legend items [{name, color}]. */
export function legend(items) {
  return h('ul', { class: 'legend' }, items.map((item) =>
    h('li', {}, h('svg', { class: 'swatch', width: 12, height: 12, 'aria-hidden': 'true' },
      h('rect', { width: 12, height: 12, fill: item.color })), ` ${item.name}`)));
}
