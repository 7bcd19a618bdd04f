/**
 * The service manager's notification protocol (sd_notify(3)): `Type=notify` units learn from it
 * that the target serves (READY=1), is reloading its configuration (RELOADING=1) or stopping
 * (STOPPING=1). Sent by the native addon (native/src/notify.cc; Node has no unix datagram
 * sockets); a process not started by systemd ($NOTIFY_SOCKET unset) sends nothing.
 */
import { loadNative } from './index';

/** Sends the assignments (e.g. `{ READY: 1, STATUS: 'serving 3 LUNs' }`); false when not under a service manager. */
export function sdNotify(state: Record<string, string | number>): boolean {
  if (!process.env.NOTIFY_SOCKET) return false;
  const text = Object.entries(state)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
    .join('\n');
  return loadNative().sdNotify(text);
}
