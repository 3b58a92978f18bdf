// A conversation is a tree: regenerations and A/B candidates are siblings under one user message.
// The thread on screen is one path from the root down, chosen sibling by sibling. Where the user has
// not chosen, the path follows the server's rule (a new message attaches to the newest leaf that is
// not a set-aside A/B candidate), so what is shown is what the next message will continue.

export interface TreeNode {
  id: string;
  parentId: string | null;
}

/** The key of a node's children list: the parent id, or ROOT for top-level messages. */
export const ROOT = '';
const keyOf = (parentId: string | null): string => parentId ?? ROOT;

export interface MessageTree<M extends TreeNode> {
  byId: Map<string, M>;
  /** Children per parent key, in the order given (oldest first). */
  children: Map<string, M[]>;
  /** Messages in the order given. */
  order: M[];
}

export function buildTree<M extends TreeNode>(messages: readonly M[]): MessageTree<M> {
  const byId = new Map<string, M>();
  const children = new Map<string, M[]>();
  for (const m of messages) {
    byId.set(m.id, m);
    const k = keyOf(m.parentId);
    const list = children.get(k);
    if (list) list.push(m);
    else children.set(k, [m]);
  }
  return { byId, children, order: [...messages] };
}

export function childrenOf<M extends TreeNode>(tree: MessageTree<M>, parentId: string | null): M[] {
  return tree.children.get(keyOf(parentId)) ?? [];
}

/** The newest message without children, skipping `setAside` ones (undecided or rejected A/B candidates). */
export function newestLeaf<M extends TreeNode>(tree: MessageTree<M>, setAside: ReadonlySet<string> = new Set()): M | undefined {
  for (let i = tree.order.length - 1; i >= 0; i--) {
    const m = tree.order[i]!;
    if (!tree.children.has(m.id) && !setAside.has(m.id)) return m;
  }
  return undefined;
}

/** Root-first ids from the root down to `id` (empty when unknown). */
export function pathTo<M extends TreeNode>(tree: MessageTree<M>, id: string): M[] {
  const out: M[] = [];
  const seen = new Set<string>();
  let cur = tree.byId.get(id);
  while (cur && !seen.has(cur.id)) {
    seen.add(cur.id);
    out.push(cur);
    cur = cur.parentId === null ? undefined : tree.byId.get(cur.parentId);
  }
  return out.reverse();
}

/** Selections: parent key → the chosen child id. */
export type Selection = Readonly<Record<string, string>>;

/** A selection that shows `id` (and keeps every other choice). */
export function selectPathTo<M extends TreeNode>(tree: MessageTree<M>, selection: Selection, id: string): Selection {
  const next: Record<string, string> = { ...selection };
  for (const m of pathTo(tree, id)) next[keyOf(m.parentId)] = m.id;
  return next;
}

/**
 * The path shown: from the root, at each level the selected child, else the child leading to the
 * newest leaf (the server's continuation point), else the newest child.
 */
export function activePath<M extends TreeNode>(tree: MessageTree<M>, selection: Selection = {}, setAside: ReadonlySet<string> = new Set()): M[] {
  const leaf = newestLeaf(tree, setAside);
  const onDefault = new Set(leaf ? pathTo(tree, leaf.id).map((m) => m.id) : []);
  const out: M[] = [];
  let key = ROOT;
  for (;;) {
    const kids = tree.children.get(key);
    if (!kids || kids.length === 0) break;
    const chosen = selection[key];
    const next = kids.find((k) => k.id === chosen) ?? kids.find((k) => onDefault.has(k.id)) ?? kids[kids.length - 1]!;
    out.push(next);
    key = next.id;
  }
  return out;
}

export interface SiblingInfo {
  /** 1-based position among its siblings. */
  index: number;
  count: number;
  prevId: string | null;
  nextId: string | null;
}

/** Where `id` stands among its siblings (the `< 1/2 >` control). */
export function siblingInfo<M extends TreeNode>(tree: MessageTree<M>, id: string): SiblingInfo {
  const m = tree.byId.get(id);
  if (!m) return { index: 0, count: 0, prevId: null, nextId: null };
  const sibs = childrenOf(tree, m.parentId);
  const i = sibs.findIndex((s) => s.id === id);
  return { index: i + 1, count: sibs.length, prevId: i > 0 ? sibs[i - 1]!.id : null, nextId: i < sibs.length - 1 ? sibs[i + 1]!.id : null };
}

/** The selection after stepping to a sibling (its subtree shows its own default path). */
export function selectSibling<M extends TreeNode>(tree: MessageTree<M>, selection: Selection, siblingId: string): Selection {
  const m = tree.byId.get(siblingId);
  if (!m) return selection;
  return { ...selection, [keyOf(m.parentId)]: siblingId };
}
