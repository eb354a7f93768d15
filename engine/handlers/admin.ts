// The admin APIs, for the dispatcher: topics (create, delete, add partitions), configs (describe,
// alter, incremental alter) and DeleteRecords. Each lives in its own file.
import { alterConfigsHandler } from './alterConfigs.js';
import { createPartitionsHandler } from './createPartitions.js';
import { createTopicsHandler } from './createTopics.js';
import { deleteRecordsHandler } from './deleteRecords.js';
import { deleteTopicsHandler } from './deleteTopics.js';
import { describeConfigsHandler } from './describeConfigs.js';
import { incrementalAlterConfigsHandler } from './incrementalAlterConfigs.js';

export const adminHandlers = [
  createTopicsHandler,
  deleteTopicsHandler,
  deleteRecordsHandler,
  describeConfigsHandler,
  alterConfigsHandler,
  createPartitionsHandler,
  incrementalAlterConfigsHandler,
];
