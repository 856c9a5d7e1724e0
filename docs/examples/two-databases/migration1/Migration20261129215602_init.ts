import { Migration } from '@mikro-orm/migrations';

export class Migration20261129215602_init extends Migration {
  override name = 'Migration20261129215602_init';

  override up(): void | Promise<void> {
    this.addSql(`create table \`spam\` (\`id\` integer not null primary key autoincrement, \`variety\` text not null);`);
  }
}
