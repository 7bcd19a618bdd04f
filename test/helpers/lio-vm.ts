/**
 * The LIO VM (src/peers/lio-vm.ts, docs/lio.md) as a jest fixture: one VM per test file.
 */
import { startLioVm, type LioVm, type LioVmOptions } from '../../src/peers/lio-vm';

export { TARGETCLI_CONFIGS, type LioVm, type LioVmOptions } from '../../src/peers/lio-vm';

/** What a test file runs against the VM's whole life: after it boots, and before it is stopped. */
export interface LioVmHooks {
  started?: (vm: LioVm) => Promise<void>;
  /** Runs while the VM still answers (jest runs afterAll hooks in the order they were declared). */
  stopping?: () => Promise<void>;
}

/**
 * One VM for the test file: started in beforeAll (within the boot timeout plus the image build),
 * stopped in afterAll. `vm()` is the running VM.
 */
export function lioVmFixture(o: LioVmOptions, hooks: LioVmHooks = {}): () => LioVm {
  let vm: LioVm | undefined;
  beforeAll(async () => {
    vm = await startLioVm(o);
    await hooks.started?.(vm);
  }, (o.bootTimeoutMs ?? 120_000) + 300_000);
  afterAll(async () => {
    try {
      await hooks.stopping?.();
    } finally {
      await vm?.stop();
    }
  }, 120_000);
  return () => {
    if (!vm) throw new Error('LIO VM: not running (its start failed; see the first error of this suite)');
    return vm;
  };
}
