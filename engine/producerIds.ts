// Hands out producer ids for InitProducerId. Ids come from the metadata store in blocks, so the
// store is written once per block, and a restart never hands out an id twice (the rest of an
// unused block is skipped, as Kafka does).
import type { MetadataStore } from './metadataStore.js';

export const PRODUCER_ID_BLOCK_SIZE = 1000;

export class ProducerIdAllocator {
  private next = 0;
  private last = -1;
  private refill: Promise<void> | null = null;

  constructor(private readonly store: MetadataStore) {}

  async allocate(): Promise<number> {
    while (this.next > this.last) {
      // One refill at a time; concurrent callers wait for it, then take ids from the new block.
      this.refill ??= this.store.reserveProducerIds(PRODUCER_ID_BLOCK_SIZE).then(
        (block) => {
          this.next = block.first;
          this.last = block.last;
          this.refill = null;
        },
        (error: unknown) => {
          this.refill = null;
          throw error;
        },
      );
      await this.refill;
    }
    return this.next++;
  }
}
