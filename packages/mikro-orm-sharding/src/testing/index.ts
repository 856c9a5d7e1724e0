export { createTestShards, type CreateTestShardsOptions, type TestShards } from './create-test-shards.ts';
export { rollbackScope, type RollbackScope } from './rollback.ts';
