// Makes ids in a process of its own: node id and count from argv; prints them as one JSON array.
import { idGenerator } from 'mikro-orm-sharding';

const [node, count] = process.argv.slice(2).map(Number);
const ids = idGenerator({ node: node! });
const made: string[] = [];
for (let i = 0; i < count!; i++) {
  made.push(ids.next(i % 7));
}
process.stdout.write(JSON.stringify(made));
