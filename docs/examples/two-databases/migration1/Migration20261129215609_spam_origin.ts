import { Migration } from '@mikro-orm/migrations';

export class Migration20261129215609_spam_origin extends Migration {
  override name = 'Migration20261129215609_spam_origin';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`spam\` add column \`origin\` text null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`spam\` drop column \`origin\`;`);
  }
}
