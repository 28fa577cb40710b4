/**
 * Handlers of the run workbench methods (src-shared/contract/run-methods.ts): item drill-down,
 * run management and paired comparison. Wired into handlers.ts with one spread.
 *
 * Live refresh: this engine pushes `job/state` for its own runs; `runs/version` is a cheap
 * aggregate over the runs table that views poll, so changes no event announces — another
 * window's rename or delete, a run merged from a cluster store, anything writing the database
 * outside this engine — still reach every open Runs view within one poll. The data lock keeps a
 * second *engine* off the folder, so polling one SQL aggregate every few seconds is all it costs.
 */
import type { ParsedParamsOf, ResultOf } from '../../src-shared/contract/methods.ts';
import type { runMethods } from '../../src-shared/contract/run-methods.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { ReadoutSpec, VlmForwardSpec } from '../../src-shared/jobs/specs.ts';
import type { Label } from '../../src-shared/dataset/format.ts';
import { pairedCompare } from '../../src-shared/metrics/paired-compare.ts';
import { specDiff } from '../../src-shared/runs/spec-summary.ts';
import { type ReadoutPerItem, type ReadoutSummary, readoutAnalysis } from '../experiments/hidden-in-plain-sight/readout-summary.ts';
import type { Store } from '../store/store.ts';
import { RunCatalog } from '../store/repos/run-catalog.ts';
import type { EngineContext } from './engine-context.ts';
import { openModelFolder } from './model-folder.ts';
import { VlmProcessing } from './vlm/processing.ts';

type RunMethod = keyof typeof runMethods;
export type RunHandlers = { [M in RunMethod]: (params: ParsedParamsOf<M>) => Promise<ResultOf<M>> };

/** How long a deleted run can be restored before a poll purges it ($LOUPE_RUN_PURGE_MINUTES, default 10). */
export function purgeAfterMs(): number {
  const raw = process.env.LOUPE_RUN_PURGE_MINUTES;
  const minutes = raw === undefined || raw === '' ? 10 : Number(raw);
  if (!(minutes >= 0)) throw new LoupeError('bad-input', `LOUPE_RUN_PURGE_MINUTES must be a number of minutes ≥ 0, not "${raw}"`);
  return Math.round(minutes * 60_000);
}

/** A short text for filtering items by label: class values, and label kinds with their names. */
function labelTag(l: Label): string {
  switch (l.kind) {
    case 'class':
      return l.value;
    case 'box':
      return l.text ? `box:${l.text}` : 'box';
    case 'pointPair':
    case 'point':
    case 'mask':
      return l.name ? `${l.kind}:${l.name}` : l.kind;
  }
}

/** Readout analyses are whole-run computations (probes over every item); item pages reuse them until the run changes. */
class ReadoutCache {
  private readonly entries = new Map<string, { summary: ReadoutSummary; perItem: ReadoutPerItem } | LoupeError>();
  private readonly store: Store;
  constructor(store: Store) {
    this.store = store;
  }

  get(runId: string, updatedAt: string): { summary: ReadoutSummary; perItem: ReadoutPerItem } | LoupeError {
    const key = `${runId}@${updatedAt}`;
    let hit = this.entries.get(key);
    if (!hit) {
      try {
        hit = readoutAnalysis(this.store, runId);
      } catch (e) {
        if (!(e instanceof LoupeError)) throw e;
        hit = e;
      }
      this.entries.set(key, hit);
      // A handful of runs is what one person drills into at a time.
      while (this.entries.size > 4) this.entries.delete(this.entries.keys().next().value!);
    }
    return hit;
  }
}

export function createRunHandlers(engine: EngineContext): RunHandlers {
  const { store } = engine;
  const catalog = new RunCatalog(store.db, store.runs, store.blobs);
  const readouts = new ReadoutCache(store);
  const processings = new Map<string, Promise<VlmProcessing>>();

  // "Purged on next start": runs deleted by an earlier engine go now. A purge that cannot write
  // (a full disk) must not stop the engine from starting; the runs stay deleted and go next time.
  try {
    catalog.purge();
  } catch (e) {
    console.error(`loupe: could not purge deleted runs at start: ${(e as Error).message}`);
  }
  const purgeExpired = () => {
    try {
      catalog.purge({ deletedBefore: new Date(Date.now() - purgeAfterMs()).toISOString() });
    } catch (e) {
      console.error(`loupe: could not purge deleted runs: ${(e as Error).message}`);
    }
  };

  const processingOf = (modelId: string, path: string, variant: unknown): Promise<VlmProcessing> => {
    let p = processings.get(modelId);
    if (!p) {
      const folder = openModelFolder(path, variant as never);
      p = VlmProcessing.load(folder.path, folder.preprocessor, folder.family);
      p.catch(() => processings.delete(modelId));
      processings.set(modelId, p);
    }
    return p;
  };

  return {
    'runs/catalog': async () => {
      purgeExpired();
      return catalog.list();
    },
    'runs/version': async () => {
      purgeExpired();
      return { version: catalog.version() };
    },
    'runs/annotate': async ({ runId, ...change }) => catalog.annotate(runId, change),
    'runs/delete': async ({ runIds }) => ({ deleted: catalog.softDelete(runIds), purgeAfterMs: purgeAfterMs() }),
    'runs/undelete': async ({ runIds }) => ({ restored: catalog.undelete(runIds) }),
    'runs/purge': async ({ runIds }) => catalog.purge(runIds ? { runIds } : {}),

    'runs/items': async ({ runId }) => {
      const run = store.runs.get(runId);
      const results = new Map(store.runs.results(runId).map((r) => [r.itemId, r]));
      const labels = store.labels.storedByItem(run.datasetId);
      let pns: Set<string> | null = null;
      let note: string | null = null;
      let perStage: ((itemId: string) => Record<string, boolean> | null) = () => null;
      if (run.kind === 'readout') {
        const a = readouts.get(runId, run.updatedAt);
        if (a instanceof LoupeError) note = a.message;
        else {
          pns = new Set(a.summary.presentNotSurfaced);
          const at = new Map(a.perItem.itemIds.map((id, k) => [id, k]));
          perStage = (itemId) => {
            const k = at.get(itemId);
            return k === undefined ? null : Object.fromEntries([...a.perItem.correct].map(([stage, v]) => [stage, v[k] === 1]));
          };
        }
      }
      const items = store.runs.itemLedger(runId).map((x, ord) => {
        const r = results.get(x.itemId);
        const correct = r && 'correct' in r.metrics ? r.metrics.correct === 1 : null;
        return {
          itemId: x.itemId,
          ord,
          status: x.status as 'pending' | 'done' | 'failed',
          correct,
          presentNotSurfaced: pns && r ? pns.has(x.itemId) : null,
          stages: perStage(x.itemId),
          labels: [...new Set((labels.get(x.itemId) ?? []).map((l) => labelTag(l.label)))],
        };
      });
      return { run, items, presentNotSurfacedNote: note };
    },

    'runs/item': async ({ runId, itemId }) => {
      const run = store.runs.get(runId);
      const ledger = store.runs.itemLedger(runId);
      const index = ledger.findIndex((x) => x.itemId === itemId);
      if (index < 0) throw new LoupeError('not-found', `run ${runId} has no item ${itemId}`);
      const item = store.datasets.item(run.datasetId, itemId);
      const result = store.runs.results(runId).find((r) => r.itemId === itemId) ?? null;
      const failure = ledger[index]!.status === 'failed' ? (store.runs.failures(runId, 0, 1_000_000).items.find((f) => f.itemId === itemId)?.error ?? 'no reason recorded') : null;
      let stages: { stage: string; correct: boolean }[] | null = null;
      let pns: boolean | null = null;
      let stagesNote: string | null = null;
      if (run.kind === 'readout' && result) {
        const a = readouts.get(runId, run.updatedAt);
        if (a instanceof LoupeError) stagesNote = a.message;
        else {
          const k = a.perItem.itemIds.indexOf(itemId);
          const order = [...a.summary.stages.map((s) => s.stage), 'answer', 'blind'];
          stages = order.filter((s) => a.perItem.correct.has(s)).map((stage) => ({ stage, correct: a.perItem.correct.get(stage)![k] === 1 }));
          pns = a.summary.presentNotSurfaced.includes(itemId);
        }
      }
      return {
        run,
        item: { id: item.id, images: item.images, prompt: item.prompt ?? null, choices: item.choices ?? null, answer: item.answer ?? null, labels: store.labels.list(run.datasetId, itemId).map((l) => ({ id: l.id, label: l.label })) },
        index,
        total: ledger.length,
        prev: ledger[index - 1]?.itemId ?? null,
        next: ledger[index + 1]?.itemId ?? null,
        status: ledger[index]!.status as 'pending' | 'done' | 'failed',
        error: failure,
        result,
        stages,
        presentNotSurfaced: pns,
        stagesNote,
      };
    },

    'runs/prompt-tokens': async ({ runId, itemId }) => {
      const run = store.runs.get(runId);
      if (run.kind === 'encode-images') throw new LoupeError('bad-input', `run ${runId} encodes images only; it has no prompt`);
      const spec = run.kind === 'readout' ? ReadoutSpec.parse(run.spec) : VlmForwardSpec.parse(run.spec);
      const item = store.datasets.item(run.datasetId, itemId);
      const question = item.prompt ?? ('prompt' in spec ? spec.prompt : undefined);
      if (!question) throw new LoupeError('bad-input', `item ${itemId} has no prompt and run ${runId}'s spec gives none`);
      const model = store.models.get(run.modelId);
      const processing = await processingOf(model.id, model.path, spec.variant);
      const images = 'image' in spec && spec.image === 'none' ? 0 : Math.max(1, item.images.length);
      const textPrefix = 'textPrefix' in spec ? spec.textPrefix : undefined;
      const prompt = processing.prompt(question, images, textPrefix ? { text: textPrefix } : undefined);
      const ids = processing.tokenizer.encode(prompt);
      const special = new Set(processing.tokenizer.all_special_ids);
      const config = model.config as { image_token_index?: number; image_token_id?: number };
      const imageId = config.image_token_index ?? config.image_token_id;
      const piece = (id: number) => processing.tokenizer.decode([id], { skip_special_tokens: false });
      return {
        prompt,
        tokens: ids.map((id) => ({ id, piece: piece(id), special: special.has(id) || id === imageId })),
        imageToken: imageId === undefined ? null : piece(imageId),
      };
    },

    'runs/compare-paired': async ({ runIds, baselineId }) => {
      const runs = runIds.map((id) => store.runs.get(id));
      const base = baselineId ?? runIds[0]!;
      const compared = pairedCompare(
        runs.map((r) => ({ runId: r.id, results: store.runs.results(r.id) })),
        base,
      );
      const diff = specDiff(runs.map((r) => ({ kind: r.kind, model: r.modelId, dataset: r.datasetId, provider: r.provenance.executionProvider, spec: r.spec })));
      return { runs, ...compared, specDiff: diff };
    },
  };
}
