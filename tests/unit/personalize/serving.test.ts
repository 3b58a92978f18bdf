// Which soft prompt a user gets: none before the first version, their own once a version has them,
// e_0 for everyone else and for a user who reset after that version was made; a publish serves only
// once reload() is called, and resets outlive a restart.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UserModelServing } from '../../../server/personalize/serving.ts';
import { addUser, publishVersion, type TestDb, testDb, userModelBlob } from '../../helpers/personalization.ts';

describe('UserModelServing', () => {
  let t: TestDb;
  let alice: string;
  let bob: string;
  beforeEach(() => {
    t = testDb();
    alice = addUser(t, 'alice');
    bob = addUser(t, 'bob');
  });
  afterEach(() => t.close());

  it('serves nothing before the first version', () => {
    const s = new UserModelServing(t.repos.userModels);
    s.load();
    assert.equal(s.currentVersion(), null);
    assert.deepEqual(s.prefixFor(alice), { prefix: null, version: null, source: 'none', sourceVersion: null });
  });

  it("gives a user in the version their own prefix, anyone else e_0, and holds no blob in memory", () => {
    const v = publishVersion(t, userModelBlob([alice]), 1000);
    const s = new UserModelServing(t.repos.userModels);
    s.load();
    assert.equal(s.currentVersion()!.id, v);
    assert.equal(s.currentVersion()!.blob, null);
    assert.deepEqual(s.prefixFor(alice), { prefix: Float32Array.from([11, 12]), version: v, source: 'personal', sourceVersion: v });
    assert.deepEqual(s.prefixFor(bob), { prefix: Float32Array.from([1, 2]), version: null, source: 'generic', sourceVersion: v });
  });

  it('swaps to a newly published version only on reload()', () => {
    const v1 = publishVersion(t, userModelBlob([]), 1000);
    const s = new UserModelServing(t.repos.userModels);
    s.load();
    const before = s.current();
    const v2 = publishVersion(t, userModelBlob([bob]), 2000);
    assert.equal(s.currentVersion()!.id, v1, 'a reply taking its prefix now still gets the old version');
    s.reload();
    assert.equal(s.currentVersion()!.id, v2);
    assert.equal(s.prefixFor(bob).source, 'personal');
    assert.equal(before.version!.id, v1, 'a snapshot taken earlier is not changed by the swap');
  });

  it('a reset sends the user back to e_0 of the version made before it, is stored, and outlives a restart', () => {
    publishVersion(t, userModelBlob([alice]), 1000);
    const s = new UserModelServing(t.repos.userModels);
    s.load();
    s.resetUser(alice, 1500);
    assert.equal(s.prefixFor(alice).source, 'generic');
    assert.equal(s.resetAt(alice), 1500);
    assert.deepEqual([...s.resetTimes()], [[alice, 1500]]);
    const restarted = new UserModelServing(t.repos.userModels);
    restarted.load();
    assert.equal(restarted.resetAt(alice), 1500);
    assert.equal(restarted.prefixFor(alice).source, 'generic');
    // A version made after the reset, trained on the user again, is theirs.
    publishVersion(t, userModelBlob([alice]), 2000);
    restarted.reload();
    assert.equal(restarted.prefixFor(alice).source, 'personal');
  });
});
