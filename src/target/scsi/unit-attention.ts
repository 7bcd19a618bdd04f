/**
 * Unit attention conditions, kept per I_T nexus for one logical unit (SAM-5 r21 5.14, SPC-4 r37 4.5.5).
 *
 * - A nexus the logical unit has not seen before starts with POWER ON, RESET, OR BUS DEVICE
 *   RESET OCCURRED (29h/00h): for it, the logical unit has just come into existence.
 * - Conditions queue in order of occurrence, without duplicates. A reset condition (ASC 29h)
 *   supersedes everything queued before it (SPC-4 r37 4.5.5: it reports the most important event).
 * - The queue is bounded (16); further conditions are dropped, as SPC-4 allows when the
 *   device server cannot queue them (they are less important than what is already queued).
 * - Conditions for a nexus that has never been seen are not kept: its first command will report
 *   the power-on condition, which covers them.
 */
import type { ItNexus } from './types';
import { Sense, type SenseReason } from './sense-errors';

const MAX_QUEUED = 16;

export class UnitAttentions {
  private readonly queues = new Map<string, SenseReason[]>();

  /** Registers a nexus; the first time, queues the power-on condition. Returns true if new. */
  touch(nexus: ItNexus): boolean {
    if (this.queues.has(nexus.id)) return false;
    this.queues.set(nexus.id, [Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED]);
    return true;
  }

  /** Drops a nexus (it logged out or was lost): the next time it appears it is new. */
  forget(nexusId: string): void {
    this.queues.delete(nexusId);
  }

  /** Ids of every nexus this logical unit knows. */
  nexusIds(): string[] {
    return [...this.queues.keys()];
  }

  /** Queues `reason` for one known nexus. */
  establish(nexusId: string, reason: SenseReason): void {
    const q = this.queues.get(nexusId);
    if (q === undefined) return;
    if (reason.asc === Sense.POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED.asc) {
      // any reset condition (ASC 29h)
      q.length = 0;
      q.push(reason);
      return;
    }
    if (q.some((r) => r === reason)) return;
    if (q.length < MAX_QUEUED) q.push(reason);
  }

  /** Queues `reason` for every known nexus except `exceptId`. */
  establishAll(reason: SenseReason, exceptId?: string): void {
    for (const id of this.queues.keys()) if (id !== exceptId) this.establish(id, reason);
  }

  /** The oldest condition of a nexus, removed (SAM-5 r21 5.14: reporting a condition clears it). */
  take(nexusId: string): SenseReason | undefined {
    return this.queues.get(nexusId)?.shift();
  }

  /** The conditions queued for a nexus, oldest first (not removed). */
  pending(nexusId: string): readonly SenseReason[] {
    return this.queues.get(nexusId) ?? [];
  }

  /** Removes one kind of condition for a nexus (REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED). */
  clear(nexusId: string, reason: SenseReason): void {
    const q = this.queues.get(nexusId);
    if (q === undefined) return;
    const i = q.indexOf(reason);
    if (i >= 0) q.splice(i, 1);
  }
}
