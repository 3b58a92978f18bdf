// Which soft prompt each user gets: the published user-model version, and when each user last reset
// their personalization.
//
// Atomic publication: prefixFor() reads one immutable snapshot {version, model}; reload() swaps the
// snapshot after the database transaction that published a version has committed. A reply takes its
// prefix once, at its start, so replies in flight finish on the old soft prompt and later ones use
// the new.
import type { UserModelRepository, UserModelVersionRecord } from '../db/user-models.ts';
import { UserModel } from './user-model.ts';

/** Where a user's soft prompt came from: their own parameters, the generic e_0, or none at all. */
export interface ResolvedPrefix {
  prefix: Float32Array | null;
  /** The version, when the user is personalized (their own parameters); null when generic. */
  version: string | null;
  source: 'personal' | 'generic' | 'none';
  /** The version whose e_0 (or own parameters) was used; null for 'none'. */
  sourceVersion: string | null;
}

/** The published version (its record without the blob) and its model; both null before the first. */
export interface ServingSnapshot {
  readonly version: UserModelVersionRecord | null;
  readonly model: UserModel | null;
}

export class UserModelServing {
  private snapshot: ServingSnapshot = { version: null, model: null };
  private resets = new Map<string, number>();

  constructor(private readonly userModels: UserModelRepository) {}

  /** Reads the resets and the published version (at start-up). */
  load(): void {
    this.resets = this.userModels.resets();
    this.reload();
  }

  /** Serves the version the database has as published: call it once a publish has committed. */
  reload(): void {
    const { versionId } = this.userModels.current();
    const v = versionId ? this.userModels.findVersion(versionId) : undefined;
    if (!v || !v.blob) {
      this.snapshot = { version: null, model: null };
      return;
    }
    this.snapshot = { version: { ...v, blob: null }, model: UserModel.deserialize(v.blob) };
  }

  current(): ServingSnapshot {
    return this.snapshot;
  }

  currentVersion(): UserModelVersionRecord | null {
    return this.snapshot.version;
  }

  prefixFor(userId: string): ResolvedPrefix {
    const { version, model } = this.snapshot;
    if (!version || !model) return { prefix: null, version: null, source: 'none', sourceVersion: null };
    const reset = this.resets.get(userId);
    const personal = model.hasUser(userId) && !(reset !== undefined && reset >= version.createdAt);
    return {
      prefix: model.prefixFor(personal ? userId : null),
      version: personal ? version.id : null,
      source: personal ? 'personal' : 'generic',
      sourceVersion: version.id,
    };
  }

  /** When the user last reset their personalization, if ever. */
  resetAt(userId: string): number | undefined {
    return this.resets.get(userId);
  }

  /** Every user who reset, with the time: their pairs from before it are not trained on again. */
  resetTimes(): ReadonlyMap<string, number> {
    return this.resets;
  }

  /** Back to e_0 from `at` on: stored first, then served. */
  resetUser(userId: string, at: number): void {
    this.userModels.resetUser(userId, at);
    this.resets.set(userId, at);
  }
}
