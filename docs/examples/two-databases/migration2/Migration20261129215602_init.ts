import { Migration } from '@mikro-orm/migrations';

export class Migration20261129215602_init extends Migration {
  override name = 'Migration20261129215602_init';

  override up(): void | Promise<void> {
    this.addSql(`create table \`eggs\` (\`id\` integer not null primary key autoincrement, \`pkg_qty\` integer not null default 12);`);
  }
}
