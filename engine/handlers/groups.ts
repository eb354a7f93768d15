// The consumer group APIs, for the dispatcher's table.
import { deleteGroupsHandler } from './deleteGroups.js';
import { describeGroupsHandler } from './describeGroups.js';
import { findCoordinatorHandler } from './findCoordinator.js';
import { heartbeatHandler } from './heartbeat.js';
import { joinGroupHandler } from './joinGroup.js';
import { leaveGroupHandler } from './leaveGroup.js';
import { listGroupsHandler } from './listGroups.js';
import { offsetCommitHandler } from './offsetCommit.js';
import { offsetDeleteHandler } from './offsetDelete.js';
import { offsetFetchHandler } from './offsetFetch.js';
import { syncGroupHandler } from './syncGroup.js';

export const groupHandlers = [
  findCoordinatorHandler,
  joinGroupHandler,
  syncGroupHandler,
  heartbeatHandler,
  leaveGroupHandler,
  offsetCommitHandler,
  offsetFetchHandler,
  listGroupsHandler,
  describeGroupsHandler,
  deleteGroupsHandler,
  offsetDeleteHandler,
];
