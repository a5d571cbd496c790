#!/usr/bin/env node
// Fails when the modules of src/ import each other in a cycle. Two levels are checked:
//  - the crate's top-level modules (`crate::config`, `crate::jwt`, …, a submodule counted as its
//    parent), which must form the layered stack of docs/architecture.md;
//  - the sibling submodules inside each module (`providers::xwms` and `providers::loginradius`),
//    where a parent module dispatching to its children and the children using the parent's
//    shared items is the normal Rust shape, so parent ↔ child edges are not counted.
// References are read from the source text: `crate::a::b` paths (use trees expanded) and
// `super::` paths. Test code is left out — `#[cfg(test)]` modules, `*tests.rs` files, `tests/`
// folders and the
// test-support module `testing`, which builds fakes of every layer. `--graph` prints the
// top-level edges.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const SRC = join(import.meta.dirname, '..', 'src');

/** Every .rs file under src/ with its module path (`src/jwt/keys.rs` → ['jwt', 'keys']). */
function modules(dir = SRC) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) { if (name !== 'bin' && name !== 'tests') out.push(...modules(path)); continue; }
    if (!name.endsWith('.rs') || /(^|_)tests\.rs$/.test(name)) continue;
    const parts = relative(SRC, path).slice(0, -3).split(sep);
    if (parts.at(-1) === 'mod') parts.pop();
    if (parts.length === 1 && (parts[0] === 'lib' || parts[0] === 'main')) parts.pop();
    out.push({ path, mod: parts });
  }
  return out;
}

/** Source text without comments, string literals (a path in a doc line is no import) and
 * `#[cfg(test)]` items. */
function code(text) {
  return withoutTests(text)
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/r#*"[\s\S]*?"#*/g, '""')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\]|\\.)'/g, "' '");
}

/** `text` without each `#[cfg(test)]` item (an attribute, then up to a `;` or a balanced
 * `{ … }`). */
function withoutTests(text) {
  let out = text;
  for (let at = out.indexOf('#[cfg(test)]'); at >= 0; at = out.indexOf('#[cfg(test)]', at)) {
    let j = at + '#[cfg(test)]'.length;
    while (j < out.length && out[j] !== '{' && out[j] !== ';') j++;
    if (out[j] === '{') {
      for (let depth = 0; j < out.length; j++) {
        if (out[j] === '{') depth++;
        else if (out[j] === '}' && --depth === 0) break;
      }
    }
    out = out.slice(0, at) + out.slice(j + 1);
  }
  return out;
}

/** Expands a use tree that starts at `i` (after `crate::` or `super::`) into module paths. */
function expand(text, i, prefix, out) {
  const ident = /^[A-Za-z_][A-Za-z0-9_]*/;
  for (;;) {
    while (/\s/.test(text[i])) i++;
    if (text[i] === '{') {
      let depth = 0; let start = i + 1;
      for (let j = i; j < text.length; j++) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}') depth--;
        if ((text[j] === ',' && depth === 1) || depth === 0) {
          if (text.slice(start, j).trim()) expand(text, start, prefix, out);
          start = j + 1;
          if (depth === 0) return;
        }
      }
      return;
    }
    const m = ident.exec(text.slice(i));
    if (!m) { out.push(prefix); return; }
    const name = m[0];
    i += name.length;
    if (name === 'self') { out.push(prefix); return; }
    while (/\s/.test(text[i])) i++;
    if (text.startsWith('::', i)) { prefix = [...prefix, name]; i += 2; continue; }
    out.push([...prefix, name]);
    return;
  }
}

/** The module paths a file refers to, absolute (`['config', 'Config']`, …). */
function references(mod, text) {
  const refs = [];
  const body = code(text);
  for (const m of body.matchAll(/\bcrate\s*::/g)) expand(body, m.index + m[0].length, [], refs);
  for (const m of body.matchAll(/\b((?:super\s*::\s*)+)/g)) {
    const ups = m[1].split('super').length - 1;
    // In a file module `a/b.rs` (mod ['a','b']), `super` is ['a'].
    const base = mod.slice(0, Math.max(0, mod.length - ups));
    expand(body, m.index + m[0].length, base, refs);
  }
  return refs;
}

const files = modules().filter((f) => f.mod[0] !== 'testing');
const known = new Set(files.map((f) => f.mod.join('::')));
/** The longest known module that `path` starts with (an item path ends in a type or fn). */
function owner(path) {
  for (let n = path.length; n > 0; n--) if (known.has(path.slice(0, n).join('::'))) return path.slice(0, n);
  return null;
}

function cycles(edges) {
  // Tarjan's strongly connected components; a component of two or more nodes is a cycle.
  let index = 0; const idx = new Map(); const low = new Map(); const stack = []; const on = new Set(); const found = [];
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((s) => [...s])]);
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = []; let w;
      do { w = stack.pop(); on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) found.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return found;
}

const add = (edges, why, from, to, file) => {
  if (from === to) return;
  if (!edges.has(from)) edges.set(from, new Set());
  edges.get(from).add(to);
  why.set(`${from}→${to}`, why.get(`${from}→${to}`) ?? relative(join(SRC, '..'), file));
};

const top = new Map(); const topWhy = new Map();
const siblings = new Map(); const sibWhy = new Map();
for (const f of files) {
  if (f.mod.length === 0) continue; // lib.rs declares the modules
  for (const ref of references(f.mod, readFileSync(f.path, 'utf8'))) {
    const target = owner(ref);
    if (!target) continue;
    add(top, topWhy, f.mod[0], target[0], f.path);
    // Siblings: the two modules below their common parent, parent ↔ child left out.
    let common = 0;
    while (common < f.mod.length && common < target.length && f.mod[common] === target[common]) common++;
    if (common < f.mod.length && common < target.length) {
      const scope = f.mod.slice(0, common).join('::') || 'crate';
      if (scope === 'crate') continue; // the top level is checked above
      add(siblings, sibWhy, `${scope}::${f.mod[common]}`, `${scope}::${target[common]}`, f.path);
    }
  }
}

if (process.argv.includes('--graph')) {
  for (const [from, tos] of [...top].sort()) console.log(`${from} → ${[...tos].sort().join(', ')}`);
}
const found = [...cycles(top).map((c) => [c, topWhy]), ...cycles(siblings).map((c) => [c, sibWhy])];
if (found.length === 0) {
  console.log(`   no import cycle among ${files.length} modules of src/`);
} else {
  for (const [comp, why] of found) {
    console.error(`   import cycle among: ${comp.join(', ')}`);
    for (const [edge, file] of why) {
      const [a, b] = edge.split('→');
      if (comp.includes(a) && comp.includes(b)) console.error(`     ${a} → ${b}  (e.g. ${file})`);
    }
  }
  process.exit(1);
}
