/**
 * The one contract between the renderer (or CLI, or a browser) and the engine.
 * Each method is `'domain/verb'` → params schema + result schema. Both ends import this
 * map: the engine validates params on receipt, the client is typed from it.
 */
import { z } from 'zod';
import { BenchmarkFormat, BenchmarkImportOptions } from '../dataset/benchmarks.ts';
import { EncodeImagesSpec, ReadoutSpec, VlmForwardSpec } from '../jobs/specs.ts';
import { ModelDtype, SessionName } from '../jobs/variant.ts';
import { AblationSpec } from '../ablation/spec.ts';
import { Label } from '../dataset/format.ts';
import { DatasetInfo, ExecutionProvider, Id, ModelInfo, RunFailure, RunInfo, RunResult, RunStatus, TensorMeta } from './domain.ts';
import { runMethods } from './run-methods.ts';

export const StoredLabel = z.object({ id: z.number().int().positive(), datasetId: Id, itemId: z.string(), label: Label, updatedAt: z.string() });
export type StoredLabel = z.infer<typeof StoredLabel>;

/** Run on a cluster instead of this engine's queue: a Redis queue that `loupe worker`s take shards from (docs/scale-out.md). */
export const ClusterTarget = z
  .object({
    /** redis://[user][:password]@host:port[/db] or rediss:// (TLS). */
    queue: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').max(2000),
    /** The shared result store (folder) as this machine sees it; default <data dir>/cluster-results. */
    store: z.string().min(1).max(4096).optional(),
    /** Items per shard (default 8). */
    shardItems: z.number().int().min(1).max(100000).optional(),
  })
  .strict();
const jobTarget = { modelId: Id, datasetId: Id, name: z.string().max(200).optional(), cluster: ClusterTarget.optional() };

/** One entry per job kind: the spec schema is chosen by `kind`. */
export const StartJob = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('encode-images'), ...jobTarget, spec: EncodeImagesSpec.default(EncodeImagesSpec.parse({})) }).strict(),
  z.object({ kind: z.literal('vlm-forward'), ...jobTarget, spec: VlmForwardSpec.default(VlmForwardSpec.parse({})) }).strict(),
  z.object({ kind: z.literal('readout'), ...jobTarget, spec: ReadoutSpec.default(ReadoutSpec.parse({})) }).strict(),
]);
export type StartJob = z.input<typeof StartJob>;

const none = z.object({}).strict();

/** The K/V-token probes (engine/kv-probes). */
export const KvProbe = z.enum(['segmentation', 'segmentation-few-shot', 'correspondence', 'propagation', 'referring', 'cosegmentation', 'text-segmentation']);

/** An accuracy with its 95% Wilson interval. */
const accuracyInterval = { accuracy: z.number(), low: z.number(), high: z.number() };

const StageReadout = z.object({
  stage: z.string(),
  method: z.enum(['probe', 'cosine', 'gram', 'cls']),
  ...accuracyInterval,
  shuffledAccuracy: z.number().nullable(),
  /** Permutation test of the predictions vs the truth (100 permutations): p, and the null mean accuracy. */
  permutationP: z.number(),
  nullAccuracy: z.number(),
});

/** Which K/V probe cell a row is: probe, metric, LLM layer, key or value, and how many items it scored. */
const kvProbeCell = { probe: KvProbe, metric: z.string(), layer: z.number().int(), kind: z.enum(['key', 'value']), items: z.number().int() };
/** A K/V probe figure: value, 95% bootstrap interval (null when undefined on most resamples), shuffled-control mean, permutation p. */
const kvFigure = { value: z.number(), low: z.number().nullable(), high: z.number().nullable(), control: z.number().nullable(), p: z.number(), permutations: z.number().int() };
/** Whether a run encoded each image of a multi-image item alone (vlm-forward imagesAlone) or all in one prompt. */
const KvEncoding = z.enum(['each image alone', 'one prompt']);
/** Options shared by kv/probes and kv/compare (see experiments/inside-the-llm/index.ts). */
const kvProbeParams = {
  alpha: z.number().positive().max(1).optional(),
  alphas: z.array(z.number().positive().max(1)).min(1).max(16).optional(),
  k: z.number().int().min(1).max(64).default(5),
  permutations: z.number().int().min(20).max(1000).default(20),
  resamples: z.number().int().min(100).max(100000).default(1000),
  layers: z.array(z.number().int().nonnegative()).min(1).optional(),
  contextFrames: z.number().int().min(0).max(64).optional(),
  neighbourhood: z.number().int().min(0).max(1000).optional(),
  temperature: z.number().positive().max(100).optional(),
};

/** One run of a sweep: its label (`intact`, or the ablation's), progress, and why it has no readout when it failed. */
const SweepRun = z.object({ id: Id, label: z.string(), status: RunStatus, done: z.number().int(), total: z.number().int(), failed: z.number().int(), error: z.string().nullable() });

/** One part × layer (or all parts × layer) of the object-part LogitLens (src-shared/metrics/logit-lens.ts). */
const partRankCell = { n: z.number().int(), medianRank: z.number(), medianLow: z.number(), medianHigh: z.number(), meanRank: z.number(), hits: z.number().int(), hitRate: z.number(), hitLow: z.number(), hitHigh: z.number() };

export const methods = {
  'app/info': {
    params: none,
    result: z.object({
      version: z.string(),
      executionProvider: ExecutionProvider,
      availableProviders: z.array(ExecutionProvider),
      dataDir: z.string(),
      host: z.enum(['electron', 'server']),
    }),
  },
  /** Switch execution provider (restarts the compute worker; runs in flight retry their item). */
  'app/set-provider': { params: z.object({ provider: ExecutionProvider }).strict(), result: z.object({ executionProvider: ExecutionProvider, availableProviders: z.array(ExecutionProvider) }) },
  'models/list': { params: none, result: z.array(ModelInfo) },
  /**
   * The dtype exports each ONNX session of a model has (`onnx/<session><suffix>.onnx`), in the
   * default pick order, with the one a run gets when its spec names no `variant`; `common` are
   * the dtypes every session has (the values a single-dtype `variant` may take).
   */
  'models/variants': {
    params: z.object({ modelId: Id }).strict(),
    result: z.object({
      modelId: Id,
      sessions: z.array(
        z.object({
          session: SessionName,
          default: ModelDtype,
          variants: z.array(z.object({ dtype: ModelDtype, file: z.string(), bytes: z.number().int().nonnegative() })),
        }),
      ),
      common: z.array(ModelDtype),
    }),
  },
  'datasets/list': { params: none, result: z.array(DatasetInfo) },
  'datasets/items': {
    params: z.object({ datasetId: Id, offset: z.number().int().nonnegative().default(0), limit: z.number().int().positive().max(1000).default(100) }).strict(),
    result: z.object({
      total: z.number().int().nonnegative(),
      items: z.array(z.object({ id: z.string(), prompt: z.string().nullable(), choices: z.array(z.string()).nullable(), answer: z.string().nullable(), images: z.array(z.string()) })),
    }),
  },
  'datasets/import': { params: z.object({ path: z.string().min(1) }).strict(), result: DatasetInfo },
  /** A new, empty, user-labelled dataset stored in Loupe's data folder. */
  'datasets/create': { params: z.object({ name: z.string().min(1).max(120), task: z.string().min(1).max(80).default('labelled') }).strict(), result: DatasetInfo },
  /** Copies every PNG/JPEG/WebP of a folder into the dataset, one item per image (existing names are skipped). */
  'datasets/add-images': { params: z.object({ datasetId: Id, folder: z.string().min(1) }).strict(), result: z.object({ added: z.number().int(), skipped: z.number().int(), dataset: DatasetInfo }) },
  /** Writes the dataset with its current labels as `dataset.json` (Loupe) or `coco.json` (COCO-style) in its folder. */
  'datasets/export': { params: z.object({ datasetId: Id, format: z.enum(['loupe', 'coco']) }).strict(), result: z.object({ path: z.string() }) },
  /** A new dataset from a COCO-style JSON (boxes and one-keypoint annotations become labels). */
  'datasets/import-coco': {
    params: z.object({ path: z.string().min(1), imagesDir: z.string().min(1).optional() }).strict(),
    result: z.object({ dataset: DatasetInfo, images: z.number().int(), labels: z.number().int(), ignored: z.number().int() }),
  },
  /**
   * A new dataset from a benchmark folder in its published format (BLINK, CV-Bench, SPair-71k, DAVIS-2017,
   * RefCOCO, PASCAL-Part, COCO, ImageNet-S); streams `import/progress`; a failed import leaves no dataset behind.
   */
  'datasets/import-benchmark': {
    params: z.object({ format: BenchmarkFormat, path: z.string().min(1), options: BenchmarkImportOptions.default({ limit: 0 }) }).strict(),
    result: z.object({ dataset: DatasetInfo, items: z.number().int(), labels: z.number().int(), warnings: z.array(z.string()) }),
  },
  /** An item's image decoded to RGB; streamed as a uint8 tensor [height, width, 3] (binary frame). */
  'datasets/image': { params: z.object({ datasetId: Id, itemId: z.string().min(1), index: z.number().int().nonnegative().default(0) }).strict(), result: TensorMeta },
  'labels/list': { params: z.object({ datasetId: Id, itemId: z.string().min(1) }).strict(), result: z.array(StoredLabel) },
  /** Creates (no id) or replaces (id) a label; autosave calls this on every edit. */
  'labels/put': { params: z.object({ datasetId: Id, itemId: z.string().min(1), id: z.number().int().positive().optional(), label: Label }).strict(), result: StoredLabel },
  'labels/delete': { params: z.object({ id: z.number().int().positive() }).strict(), result: z.object({ deleted: StoredLabel }) },
  /**
   * Creates (no id) or replaces (id) a binary mask label drawn in the Label view. The mask travels
   * as PNG bytes (base64: the wire carries no client→engine binary frame; deflate keeps a mask
   * small), non-zero = inside, the size of the item's image; the engine keeps the pixels in SQLite.
   */
  'labels/put-mask': {
    params: z
      .object({
        datasetId: Id,
        itemId: z.string().min(1),
        id: z.number().int().positive().optional(),
        image: z.number().int().nonnegative(),
        name: z.string().max(200).optional(),
        png: z.string().min(1).max(900_000),
        polygons: z.array(z.array(z.tuple([z.number(), z.number()])).min(3)).max(1000).optional(),
      })
      .strict(),
    result: StoredLabel,
  },
  /** A mask label's instance ids, streamed as a uint8 (int32 above 255) tensor [height, width] (binary frame). */
  'labels/mask': { params: z.object({ id: z.number().int().positive() }).strict(), result: TensorMeta },
  /** Replaces an item's prompt, choices and answer (validated: the answer is one of the choices). */
  'datasets/set-question': {
    params: z.object({ datasetId: Id, itemId: z.string().min(1), prompt: z.string().max(4000).nullable(), choices: z.array(z.string().max(400)).max(64).nullable(), answer: z.string().max(400).nullable() }).strict(),
    result: z.object({ id: z.string(), prompt: z.string().nullable(), choices: z.array(z.string()).nullable(), answer: z.string().nullable() }),
  },
  'jobs/start': {
    params: StartJob,
    result: RunInfo,
  },
  /**
   * Bytes a run's captures will take before it starts (vlm-forward; other kinds → itemBytes null):
   * the capture plan the worker applies, over shapes from config.json and up to 4 sampled items'
   * encoded prompts; and the data folder's free space. `jobs/start` refuses a run that does not fit.
   */
  'jobs/estimate': {
    params: StartJob,
    result: z.object({
      itemBytes: z.number().nullable(),
      items: z.number().int(),
      runBytes: z.number().nullable(),
      sampledItems: z.number().int(),
      tensorsPerItem: z.number().int(),
      freeBytes: z.number(),
      dataDir: z.string(),
      fits: z.boolean(),
      notes: z.array(z.string()),
    }),
  },
  'jobs/cancel': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  /** Cluster queues this engine is connected to, and its runs on them with per-worker progress and ETA. */
  'cluster/status': {
    params: none,
    result: z.object({
      queues: z.array(z.object({ queue: z.string(), connected: z.boolean(), message: z.string() })),
      runs: z.array(
        z.object({
          runId: Id,
          queue: z.string(),
          done: z.number().int(),
          failed: z.number().int(),
          total: z.number().int(),
          etaMs: z.number().nullable(),
          workers: z.array(z.object({ worker: z.string(), ep: z.string(), done: z.number().int(), itemsPerSec: z.number().nullable() })),
        }),
      ),
    }),
  },
  /** Cancels a run sent to a cluster queue: waiting shards are removed, running ones stop before their next item. (`jobs/cancel` does the same for such runs.) */
  'cluster/cancel': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  /** Follows again a run that was on a cluster queue when the engine last stopped (it starts `paused`): merges what the workers finished, re-queues the rest. */
  'cluster/attach': { params: z.object({ runId: Id, cluster: ClusterTarget }).strict(), result: RunInfo },
  'jobs/resume': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  'runs/list': { params: z.object({ status: RunStatus.optional() }).strict().default({}), result: z.array(RunInfo) },
  /** A run, its results, and its failed items with their reasons (`failuresLimit` from `failuresOffset`; `failures.total` counts all). */
  'runs/get': {
    params: z.object({ runId: Id, failuresOffset: z.number().int().nonnegative().default(0), failuresLimit: z.number().int().min(0).max(1000).default(100) }).strict(),
    result: z.object({ run: RunInfo, results: z.array(RunResult), failures: z.object({ total: z.number().int().nonnegative(), items: z.array(RunFailure) }) }),
  },
  /** Re-queues only the failed items of a finished (`partial` or `failed`) run; the run ends done/partial/failed by the new outcome. */
  'runs/retry-failed': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  'runs/compare': {
    params: z.object({ runIds: z.array(Id).min(2).max(8) }).strict(),
    result: z.object({
      runs: z.array(RunInfo),
      sharedItems: z.number().int().nonnegative(),
      metrics: z.array(
        z.object({
          name: z.string(),
          perRun: z.array(z.object({ name: z.string(), n: z.number(), mean: z.number(), low: z.number(), high: z.number(), binary: z.boolean() }).nullable()),
          diffs: z.array(z.number().nullable()),
        }),
      ),
    }),
  },
  /**
   * A compensation sweep: one intact readout run plus one per ablation spec (e.g. patch↔patch
   * blocked in the last k vision layers, k = 1…L), queued together and summarised as recovery.
   */
  'sweeps/start': {
    params: z
      .object({
        modelId: Id,
        datasetId: Id,
        name: z.string().min(1).max(120),
        base: ReadoutSpec.omit({ ablation: true }).default({ blind: 'blank', limit: 0, gram: true, cls: true, generate: 0, scoreBy: 'choice' }),
        ablations: z.array(AblationSpec).min(1).max(32),
        /** One short name per ablation spec (run names, table columns); default `ablation i`. */
        labels: z.array(z.string().min(1).max(120)).max(32).optional(),
        /** Run the sweep's runs on a cluster queue instead of this engine. */
        cluster: ClusterTarget.optional(),
      })
      .strict(),
    result: z.object({ sweepId: Id, runIds: z.array(Id) }),
  },
  /**
   * recovery = (ablated − floor) / (intact − floor) per stage and for the answer; the floor is chance
   * or the blind answer. Partial while the sweep runs: cells of runs not done yet are null, and the
   * intact column, the floor and every recovery are null until the intact run is done.
   */
  'sweeps/summary': {
    params: z.object({ sweepId: Id, floor: z.enum(['chance', 'blind']).default('chance') }).strict(),
    result: z.object({
      sweepId: Id,
      name: z.string(),
      runIds: z.array(Id),
      runs: z.array(SweepRun),
      /** The answer row's floor (chance or the blind answer's accuracy). */
      floor: z.number().nullable(),
      /** The feature readouts' floor: always chance (a blank image has no features to probe). */
      featureFloor: z.number().nullable(),
      stages: z.array(
        z.object({
          stage: z.string(),
          intact: z.number().nullable(),
          ablated: z.array(z.number().nullable()),
          /** Null where not defined: an unfinished run, or intact within noise of the floor (`note` says which). */
          recovery: z.array(z.number().nullable()),
          /** 95% paired-bootstrap interval per ablated run (metrics/recovery.ts recoveryWithInterval). */
          recoveryInterval: z.array(z.tuple([z.number(), z.number()]).nullable()),
          /** McNemar p (intact vs ablated correctness on the shared items) per ablated run. */
          mcnemarP: z.array(z.number().nullable()),
          /** Whether intact − floor > 0 with 95% confidence; null until the intact run is done. */
          intactAboveFloor: z.boolean().nullable(),
          note: z.string().nullable(),
        }),
      ),
    }),
  },
  /** Every sweep, newest first, with its runs (intact first) and their progress, so a saved sweep can be reopened. */
  'sweeps/list': {
    params: none,
    result: z.array(z.object({ id: Id, name: z.string(), createdAt: z.string(), modelId: Id, datasetId: Id, runs: z.array(SweepRun) })),
  },
  /** Zero-shot segmentation from image K/V tokens of a vlm-forward run (taps.imageKV) on items with a marker and a mask. */
  'kv/segmentation': {
    params: z.object({ runId: Id }).strict(),
    result: z.array(z.object({ layer: z.number().int(), kind: z.enum(['key', 'value']), items: z.number().int(), miou: z.number(), controlMiou: z.number() })),
  },
  /**
   * K/V-token probes of a vlm-forward run, per LLM layer × key/value, with the benchmarks' metrics
   * (experiments/inside-the-llm/probes.ts): segmentation and few-shot segmentation (class-wise
   * mIoU on pixels), correspondence (PCK@α_bbox per keypoint and per image, SPair), propagation
   * (DAVIS J, F, J&F-Mean by DIFT label propagation: k = topk, temperature, contextFrames,
   * neighbourhood), referring (mIoU / cIoU on pixels, box acc@0.5 and mean box IoU; needs
   * taps.promptKV). Every row: a 95% bootstrap interval (items resampled), the mean of
   * `permutations` shuffled controls and the permutation p; `encoding` says whether the run
   * encoded each image alone, `notes` what the figure leaves out.
   */
  'kv/probes': {
    params: z.object({ runId: Id, ...kvProbeParams, shots: z.number().int().min(1).max(1024).default(8) }).strict(),
    result: z.array(z.object({ ...kvProbeCell, ...kvFigure, encoding: KvEncoding, notes: z.array(z.string()) })),
  },
  /**
   * Input-agnostic key tokens of a vlm-forward run with image K/V: per LLM layer and image-token
   * slot, the variance of the key across items (summed over dims and KV heads), normalised by
   * the layer's mean; flagged when below `threshold` × the layer median (and, with inputFloor > 0,
   * when the token's input itself varies: inputNormalised ≥ inputFloor). Returns the ablation
   * that blocks text → the flagged tokens in their layers and the run to start with it.
   */
  'kv/key-tokens': {
    params: z.object({ runId: Id, maxPerLayer: z.number().int().min(1).max(1000).default(5), threshold: z.number().positive().max(1).default(0.25), inputFloor: z.number().min(0).max(10).default(0) }).strict(),
    result: z.object({
      runId: Id,
      items: z.number().int(),
      threshold: z.number(),
      inputFloor: z.number(),
      rule: z.string(),
      layers: z.array(z.object({ layer: z.number().int(), tokens: z.number().int(), meanVariance: z.number(), medianVariance: z.number(), flagged: z.number().int() })),
      tokens: z.array(
        z.object({
          layer: z.number().int(),
          image: z.number().int(),
          tile: z.number().int(),
          row: z.number().int(),
          col: z.number().int(),
          patch: z.number().int(),
          items: z.number().int(),
          variance: z.number(),
          normalised: z.number(),
          z: z.number(),
          meanNorm: z.number(),
          inputNormalised: z.number().nullable(),
          attention: z.number().nullable(),
          flagged: z.boolean(),
        }),
      ),
      ablation: AblationSpec.nullable(),
      blockingRun: z.object({ kind: z.literal('vlm-forward'), modelId: Id, datasetId: Id, name: z.string(), spec: VlmForwardSpec }).nullable(),
    }),
  },
  /**
   * Two vlm-forward runs of one dataset side by side (e.g. intact vs key tokens blocked, or
   * without vs with textPrefix): answer accuracy over the shared items and every K/V probe
   * metric per layer × key/value, with other − base deltas.
   */
  'kv/compare': {
    params: z.object({ baseRunId: Id, runId: Id, ...kvProbeParams }).strict(),
    result: z.object({
      baseRunId: Id,
      runId: Id,
      sharedItems: z.number().int(),
      answer: z.object({
        base: z.object({ n: z.number().int(), ...accuracyInterval }).nullable(),
        other: z.object({ n: z.number().int(), ...accuracyInterval }).nullable(),
        delta: z.number().nullable(),
        /** 95% paired bootstrap interval of the accuracy change (items resampled). */
        deltaLow: z.number().nullable(),
        deltaHigh: z.number().nullable(),
        /** McNemar on per-item correctness: b = right in base only, c = right in other only. */
        mcnemar: z.object({ b: z.number().int(), c: z.number().int(), statistic: z.number(), pValue: z.number(), test: z.enum(['exact-binomial', 'chi-square-corrected']) }).nullable(),
      }),
      encoding: z.object({ base: KvEncoding, other: KvEncoding }),
      pAnswer: z.object({ base: z.number().nullable(), other: z.number().nullable(), delta: z.number().nullable() }),
      probes: z.array(
        z.object({
          ...kvProbeCell,
          base: z.number().nullable(),
          other: z.number().nullable(),
          delta: z.number().nullable(),
          deltaLow: z.number().nullable(),
          deltaHigh: z.number().nullable(),
          baseControl: z.number().nullable(),
          otherControl: z.number().nullable(),
          /** Why delta is null although both values exist: identical by construction. */
          unchangedBy: z.string().optional(),
        }),
      ),
      notes: z.array(z.string()),
    }),
  },
  /** The readout experiment's stage-wise accuracies vs the answer and the blind answer (computed from stored features). */
  'readout/summary': {
    params: z.object({ runId: Id }).strict(),
    result: z.object({
      items: z.number().int(),
      choices: z.array(z.string()),
      chance: z.number(),
      stages: z.array(StageReadout),
      alternatives: z.array(StageReadout),
      answer: z.object(accuracyInterval),
      blind: z.object(accuracyInterval),
      tv: z.object({ answerVsTruth: z.number(), blindVsTruth: z.number(), answerVsBlind: z.number() }),
      distributions: z.object({ answer: z.array(z.number()), blind: z.array(z.number()), truth: z.array(z.number()) }),
      presentNotSurfaced: z.array(z.string()),
      presentNotSurfacedStats: z.object({
        rate: z.number(),
        controlRate: z.number(),
        folds: z.array(z.object({ stage: z.string(), accuracy: z.number(), significant: z.boolean() })),
      }),
      /** Answers by generation + matching (spec `generate`); null when the run only scored first tokens. */
      generated: z.object({ answer: z.object(accuracyInterval), blind: z.object(accuracyInterval), unmatched: z.number().int(), blindUnmatched: z.number().int() }).nullable(),
      /** 95% percentile-bootstrap intervals of the TV distances (items resampled). */
      tvIntervals: z.object({ answerVsTruth: z.tuple([z.number(), z.number()]), blindVsTruth: z.tuple([z.number(), z.number()]), answerVsBlind: z.tuple([z.number(), z.number()]) }),
    }),
  },
  /**
   * Object-part identifiability by LogitLens over vlm-forward runs with taps.llmLayers (the intact run first, then
   * ablated runs of the same model and dataset): per part (mask labels `<class>/<part>`) × LLM layer, the best rank of
   * the part name's first token over the part's image tokens; recovery per layer of each ablated run vs the first.
   */
  'parts/logit-lens': {
    params: z
      .object({
        runIds: z.array(Id).min(1).max(64),
        /** Only these parts: full `<class>/<part>` names or bare part names. */
        parts: z.array(z.string().min(1)).min(1).optional(),
        topK: z.number().int().positive().max(100000).default(5),
        /** Also return every part instance's rank per layer (large on big datasets; for paired statistics and checks). */
        perItem: z.boolean().default(false),
      })
      .strict(),
    result: z.object({
      topK: z.number().int(),
      vocab: z.number().int(),
      /** Hit rate of a uniformly random rank: topK / vocab. */
      chance: z.number(),
      /** Items every run finished (the ones ranked) when several runs are compared; null for one run. */
      sharedItems: z.number().int().nullable(),
      parts: z.array(z.object({ part: z.string(), text: z.string(), tokenId: z.number().int(), token: z.string() })),
      runs: z.array(
        z.object({
          runId: Id,
          items: z.number().int(),
          rows: z.array(z.object({ part: z.string(), layer: z.number().int(), ...partRankCell })),
          overall: z.array(z.object({ layer: z.number().int(), ...partRankCell })),
        }),
      ),
      recovery: z.array(
        z.object({
          runId: Id,
          /** Part instances both the intact and this run ranked (the paired statistics' sample). */
          pairs: z.number().int(),
          layers: z.array(
            z.object({
              layer: z.number().int(),
              intactHitRate: z.number().nullable(),
              ablatedHitRate: z.number(),
              recovery: z.number().nullable(),
              intactMedianRank: z.number().nullable(),
              ablatedMedianRank: z.number(),
              /** Ablated − intact hit rate over the paired instances, with a percentile-bootstrap 95 % interval. */
              hitRateDiff: z.object({ estimate: z.number(), low: z.number(), high: z.number() }).nullable(),
              /** McNemar's p for the paired hits (src-shared/metrics/mcnemar.ts). */
              mcnemarP: z.number().nullable(),
            }),
          ),
        }),
      ),
      /** Parts not ranked and why (first 200; `skippedCount` has them all). */
      skipped: z.array(z.object({ runId: Id, itemId: z.string(), part: z.string(), reason: z.string() })),
      skippedCount: z.number().int(),
      /** With `perItem`: each ranked part instance, its best rank per layer 0…L. */
      instances: z.array(z.object({ runId: Id, itemId: z.string(), part: z.string(), ranks: z.array(z.number().int()) })).optional(),
    }),
  },
  /** Writes every tensor of a run into one safetensors file (names `<item>/<tensor>`), readable by Python. */
  'runs/export-tensors': { params: z.object({ runId: Id }).strict(), result: z.object({ path: z.string(), bytes: z.number().int(), tensors: z.number().int() }) },
  /** Result is streamed as one binary tensor frame with the same request id; the JSON result is its metadata. */
  'tensors/get': { params: z.object({ tensorId: Id }).strict(), result: TensorMeta },
  /** Item drill-down, run management, paired comparison (run-methods.ts). */
  ...runMethods,
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = z.input<Methods[M]['params']>;
export type ParsedParamsOf<M extends MethodName> = z.output<Methods[M]['params']>;
export type ResultOf<M extends MethodName> = z.output<Methods[M]['result']>;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(methods, name);
}
