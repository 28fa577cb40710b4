/** Byte counts for people: decimal units, as disks are sold and `df -H` prints them (the engine, CLI and run form share it). */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let u = 0;
  let x = n;
  while (x >= 1000 && u < units.length - 1) {
    x /= 1000;
    u++;
  }
  return `${u === 0 ? x : x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ${units[u]}`;
}
