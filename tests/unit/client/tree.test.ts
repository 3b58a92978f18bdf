// The message tree of the web client: siblings, the active path and how selections move it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activePath, buildTree, newestLeaf, pathTo, selectPathTo, selectSibling, siblingInfo } from '../../../client/src/lib/tree.ts';

const m = (id: string, parentId: string | null) => ({ id, parentId });
const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

// u1 → a1, a2 (regenerated); a1 → u2 → a3; oldest first as the API lists them.
const conversation = [m('u1', null), m('a1', 'u1'), m('u2', 'a1'), m('a3', 'u2'), m('a2', 'u1')];

test('siblings: position, count and neighbours among the answers to one message', () => {
  const tree = buildTree(conversation);
  assert.deepEqual(siblingInfo(tree, 'a1'), { index: 1, count: 2, prevId: null, nextId: 'a2' });
  assert.deepEqual(siblingInfo(tree, 'a2'), { index: 2, count: 2, prevId: 'a1', nextId: null });
  assert.deepEqual(siblingInfo(tree, 'u2'), { index: 1, count: 1, prevId: null, nextId: null });
  assert.equal(siblingInfo(tree, 'nope').count, 0);
});

test('the default path leads to the newest leaf (where the server attaches the next message)', () => {
  const tree = buildTree(conversation);
  assert.equal(newestLeaf(tree)?.id, 'a2');
  assert.deepEqual(ids(activePath(tree)), ['u1', 'a2']);
  // Once the conversation continued under a1, that branch is the newest leaf.
  const continued = buildTree([...conversation, m('u3', 'a2'), m('a4', 'u3'), m('u4', 'a3'), m('a5', 'u4')]);
  assert.deepEqual(ids(activePath(continued)), ['u1', 'a1', 'u2', 'a3', 'u4', 'a5']);
});

test('a selection shows a sibling and the default path below it', () => {
  const tree = buildTree(conversation);
  const sel = selectSibling(tree, {}, 'a1');
  assert.deepEqual(ids(activePath(tree, sel)), ['u1', 'a1', 'u2', 'a3']);
  assert.deepEqual(ids(activePath(tree, selectSibling(tree, sel, 'a2'))), ['u1', 'a2']);
  // An unknown id leaves the selection alone.
  assert.equal(selectSibling(tree, sel, 'nope'), sel);
});

test('selectPathTo shows a deep message whatever was selected before', () => {
  const tree = buildTree(conversation);
  const sel = selectPathTo(tree, selectSibling(tree, {}, 'a2'), 'a3');
  assert.deepEqual(ids(activePath(tree, sel)), ['u1', 'a1', 'u2', 'a3']);
  assert.deepEqual(ids(pathTo(tree, 'a3')), ['u1', 'a1', 'u2', 'a3']);
  assert.deepEqual(pathTo(tree, 'missing'), []);
});

test('set-aside A/B candidates are not the continuation point', () => {
  // u1 → A, B (a comparison): until a choice, A continues the conversation.
  const tree = buildTree([m('u1', null), m('A', 'u1'), m('B', 'u1')]);
  assert.deepEqual(ids(activePath(tree, {}, new Set(['B']))), ['u1', 'A']);
  assert.deepEqual(ids(activePath(tree, {}, new Set(['A']))), ['u1', 'B']);
});

test('an empty conversation has an empty path; a cycle in bad data does not hang', () => {
  assert.deepEqual(activePath(buildTree([])), []);
  const cyclic = buildTree([m('x', 'y'), m('y', 'x')]);
  assert.ok(pathTo(cyclic, 'x').length <= 2);
});
