/** The store facade: one database, one blob folder, the repositories over them. */
import { join } from 'node:path';
import { BlobStore } from './blob-store.ts';
import { type Db, openDatabase } from './database.ts';
import { DatasetsRepo } from './repos/datasets.ts';
import { LabelsRepo } from './repos/labels.ts';
import { ModelsRepo } from './repos/models.ts';
import { RunsRepo } from './repos/runs.ts';

export class Store {
  readonly db: Db;
  readonly blobs: BlobStore;
  readonly models: ModelsRepo;
  readonly datasets: DatasetsRepo;
  readonly runs: RunsRepo;
  readonly labels: LabelsRepo;

  constructor(dataDir: string) {
    this.db = openDatabase(join(dataDir, 'loupe.sqlite'));
    this.blobs = new BlobStore(join(dataDir, 'blobs'), this.db);
    this.models = new ModelsRepo(this.db);
    this.datasets = new DatasetsRepo(this.db);
    this.runs = new RunsRepo(this.db);
    this.labels = new LabelsRepo(this.db);
  }

  close(): void {
    this.db.close();
  }
}
