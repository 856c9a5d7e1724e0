/** Appends an item to its key's group, making the group on first use (results, roots and entities by shard). */
export function groupInto<K, T>(groups: Map<K, T[]>, key: K, item: T): void {
  const group = groups.get(key);
  if (group) {
    group.push(item);
  } else {
    groups.set(key, [item]);
  }
}
