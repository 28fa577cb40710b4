/**
 * The correspondence and attention-flow views on a real vlm-forward run: the run is started
 * through the contract, the views are opened in Chromium (software WebGL), a patch click turns
 * image B into the cosine heatmap with the best match where Node computes it from the same
 * tensors, and a token click in the 3D view traces its flow.
 */
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import type { RunResult } from '../../src-shared/contract/domain.ts';
import { attentionOnImages } from '../../src-renderer/src/scene/attention-map.ts';
import { type AttentionSource, type HeadSelect, type ImageToken, parseTokenMap, selectEdges, tensorAttention, traceFlow } from '../../src-renderer/src/scene/flow-data.ts';
import { argmax, cosineMap, listStages, patchVector, stageGrid } from '../../src-renderer/src/scene/similarity.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';
import { waitForRun } from '../helpers/runs.ts';

const SHOTS = join(import.meta.dirname, 'screenshots');
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;
let runId: string;
/** A finished run that stored no attention: switching to it must clear the flow view. */
let plainRunId: string;
let result: RunResult;

// Runs in the page; typed structurally because this file is type-checked without DOM types.
type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
  client = await connectEngine(server);
  const run = await client.call('jobs/start', {
    kind: 'vlm-forward',
    modelId: MODEL_ID,
    datasetId: 'correspondence',
    spec: { limit: 2, storeDtype: 'float32', taps: { imageKV: true, visionLayers: true, llmLayers: true, attention: true, projector: true } },
  });
  runId = run.id;
  await waitForRun(client, runId, 120_000);
  result = (await client.call('runs/get', { runId })).results[0]!;
  plainRunId = (await client.call('jobs/start', { kind: 'vlm-forward', modelId: MODEL_ID, datasetId: 'correspondence', name: 'no attention', spec: { limit: 1 } })).id;
  await waitForRun(client, plainRunId, 120_000);
});
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

const open = (hash: string): Promise<Page> => openWorkbench(browser, `${server.url}${hash}`);

describe('correspondence view', () => {
  it('turns image B into the cosine heatmap of the clicked patch of A, best match where Node finds it', async () => {
    const page = await open(`#/correspondence?run=${runId}&item=${result.itemId}`);
    const stages = listStages(result.tensors.map((t) => t.name));
    const pick = stages.findIndex((s) => s.label === 'projector');
    await page.getByTestId('corr-stage').fill(String(pick));
    const view = page.getByTestId('corr-view');
    await expect.poll(() => view.getAttribute('data-stage')).toBe('projector');

    const rows = Number(await view.getAttribute('data-rows'));
    const cols = Number(await view.getAttribute('data-cols'));
    expect([rows, cols]).toEqual([8, 8]);
    const readCells = () =>
      page.getByTestId('corr-b').evaluate((el, [rows, cols]) => {
        const c = el as unknown as Canvas;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const out: number[][] = [];
        for (let r = 0; r < rows!; r++)
          for (let k = 0; k < cols!; k++) {
            const x = Math.floor(((k + 0.5) * c.width) / cols!), y = Math.floor(((r + 0.5) * c.height) / rows!);
            out.push(Array.from(d.slice((y * c.width + x) * 4, (y * c.width + x) * 4 + 3)));
          }
        return out;
      }, [rows, cols]);
    const before = await readCells();

    // The backdrop is the item's image, from the dataset through the contract.
    await expect.poll(() => view.getAttribute('data-backdrop')).toBe('image');
    const imgA = (await client.callTensor('datasets/image', { datasetId: 'correspondence', itemId: result.itemId, index: 0 })).tensor;
    const [h, w] = imgA.shape as [number, number, number];
    const pixelA = await page.getByTestId('corr-a').evaluate((el, [x, y]) => {
      const c = el as unknown as Canvas;
      return Array.from(c.getContext('2d').getImageData(x!, y!, 1, 1).data.slice(0, 3));
    }, [Math.floor(((10.5) * 256) / w), Math.floor(((20.5) * 256) / h)]);
    expect(pixelA).toEqual(Array.from((imgA.data as Uint8Array).slice((20 * w + 10) * 3, (20 * w + 10) * 3 + 3)));
    // Ground truth: the item's pointPair label, its B point's patch.
    const pair = (await client.call('labels/list', { datasetId: 'correspondence', itemId: result.itemId })).map((l) => l.label).find((l) => l.kind === 'pointPair');
    if (pair?.kind !== 'pointPair') throw new Error('the correspondence item has no pointPair label');
    await expect.poll(() => view.getAttribute('data-truth')).toBe(`${Math.floor((pair.b.at[1] / h) * rows)},${Math.floor((pair.b.at[0] / w) * cols)}`);
    await expect(page.getByTestId('corr-truth').count()).resolves.toBe(1);

    // Click patch (2, 5) of A.
    const [pr, pc] = [2, 5];
    const box = (await page.getByTestId('corr-a').boundingBox())!;
    await page.mouse.click(box.x + ((pc + 0.5) * box.width) / cols, box.y + ((pr + 0.5) * box.height) / rows);
    await expect.poll(() => view.getAttribute('data-probe')).toBe(`${pr},${pc}`);

    // The same map computed here from the stored tensor.
    const t = await client.tensor(result.tensors.find((x) => x.name === 'projector')!.id);
    const ga = stageGrid({ kind: 'projector' }, t, [], 0), gb = stageGrid({ kind: 'projector' }, t, [], 1);
    const sims = cosineMap(patchVector(ga, pr * cols + pc), gb);
    const best = argmax(sims);
    const worst = argmax(Array.from(sims, (v) => -v));
    await expect.poll(() => view.getAttribute('data-best')).toBe(`${Math.floor(best / cols)},${best % cols}`);

    const after = await readCells();
    expect(after[best]).toEqual([253, 231, 37]); // top of the viridis ramp
    expect(after[worst]).toEqual([68, 1, 84]); // bottom
    expect(before[best]).not.toEqual(after[best]);
    expect(after.filter((px, i) => px.join() !== before[i]!.join()).length).toBeGreaterThan(rows * cols / 2);
    await expect(page.getByTestId('corr-line').count()).resolves.toBe(1);
    await expect(page.getByTestId('corr-truth-hit').textContent()).resolves.toMatch(/ground truth \d,\d: (hit|miss)/);
    await page.screenshot({ path: join(SHOTS, 'correspondence.png') });

    // Another stage (LLM layer 1 K from image_kv) recomputes the map for the pinned patch.
    const kIndex = stages.findIndex((s) => s.label === 'LLM layer 1 K');
    await page.getByTestId('corr-stage').fill(String(kIndex));
    await expect.poll(() => view.getAttribute('data-stage')).toBe('LLM layer 1 K');
    const tokens = parseTokenMap(await client.tensor(result.tensors.find((x) => x.name === 'image_token_map')!.id));
    const kt = await client.tensor(result.tensors.find((x) => x.name === 'image_kv.1.key')!.id);
    const kBest = argmax(cosineMap(patchVector(stageGrid({ kind: 'key', layer: 1 }, kt, tokens, 0), pr * cols + pc), stageGrid({ kind: 'key', layer: 1 }, kt, tokens, 1)));
    await expect.poll(() => view.getAttribute('data-best')).toBe(`${Math.floor(kBest / cols)},${kBest % cols}`);
    await expect.poll(async () => (await readCells())[kBest]).toEqual([253, 231, 37]);
    await page.close();
  });
});

describe('attention flow view', () => {
  it('draws the edges above threshold and traces a clicked token through the layers', async () => {
    // From the Runs view: open the run, then its "attention flow" link.
    const page = await open('#/runs');
    await page.locator(`[data-testid="run-row"][data-run="${runId}"]`).click();
    await page.getByTestId('open-flow').click();
    const view = page.getByTestId('flow-view');
    await expect.poll(() => page.getByTestId('flow-item').inputValue()).toBe(result.itemId);
    await expect.poll(async () => Number(await view.getAttribute('data-edges')), { timeout: 30_000 }).toBeGreaterThan(0);

    // Edge count matches the selection computed here (mean over heads, threshold 0.10, all layers).
    const atts = await Promise.all(
      result.tensors
        .filter((t) => t.name.startsWith('text.attentions.'))
        .sort((a, b) => Number(a.name.split('.').pop()) - Number(b.name.split('.').pop()))
        .map((t) => client.tensor(t.id)),
    );
    const src = tensorAttention(atts);
    const edges = selectEdges(src, { layerFrom: 0, layerTo: src.layers - 1, head: 'mean', threshold: 0.1, maxEdges: 60000 });
    expect(Number(await view.getAttribute('data-edges'))).toBe(edges.count);

    // Attention on the image, before any click: from the last prompt position at the last layer, mean over heads.
    const tokens = parseTokenMap(await client.tensor(result.tensors.find((x) => x.name === 'image_token_map')!.id));
    const panel = page.getByTestId('flow-att-panel');
    await expect.poll(() => panel.getAttribute('data-query')).toBe(String(src.seq - 1));
    expect(await panel.getAttribute('data-layer')).toBe(String(src.layers - 1));
    const last = await checkAttentionPanel(page, src, tokens, src.seq - 1, src.layers - 1, 'mean');
    expect(last.length).toBe(2); // the correspondence item has two images
    expect(last.every((m) => m.max > 0)).toBe(true);

    // Click across the canvas until a token is hit (picking is nearest-token within 10 px).
    const box = (await view.boundingBox())!;
    let hit = '';
    for (let i = 0; i < 40 && !hit; i++) {
      const fx = 0.3 + 0.4 * ((i * 0.618) % 1), fy = 0.25 + 0.5 * ((i * 0.382) % 1);
      await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
      await page.waitForTimeout(50);
      if (Number(await view.getAttribute('data-traced')) > 0) hit = (await view.getAttribute('data-selected')) ?? '';
    }
    expect(hit).toMatch(/^\d+:\d+$/);
    const [plane, token] = hit.split(':').map(Number) as [number, number];
    const trace = traceFlow(edges, src.seq, plane, token, 'both');
    expect(Number(await view.getAttribute('data-traced'))).toBe(trace.edges.length);
    expect(Number(await view.getAttribute('data-traced-nodes'))).toBe(trace.nodes.size);
    // The panel follows the selected token; the layer slider and the head filter move it.
    await expect.poll(() => panel.getAttribute('data-query')).toBe(String(token));
    await checkAttentionPanel(page, src, tokens, token, src.layers - 1, 'mean');
    // Select a token that attends to an image (after the first image token) so the maps are not all zero.
    const attends = (t: number) => attentionOnImages(src, tokens, t, src.layers - 1, 'mean').some((m) => m.max > 0);
    let q = attends(token) ? token : -1;
    for (let i = 40; i < 120 && q < 0; i++) {
      const fx = 0.3 + 0.4 * ((i * 0.618) % 1), fy = 0.25 + 0.5 * ((i * 0.382) % 1);
      await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
      await page.waitForTimeout(50);
      const sel = (await view.getAttribute('data-selected')) ?? '';
      if (sel && attends(Number(sel.split(':')[1]))) q = Number(sel.split(':')[1]);
    }
    expect(q).toBeGreaterThanOrEqual(0);
    await expect.poll(() => panel.getAttribute('data-query')).toBe(String(q));
    const chosen = await checkAttentionPanel(page, src, tokens, q, src.layers - 1, 'mean');
    expect(chosen.some((m) => m.max > 0)).toBe(true);
    await page.getByTestId('flow-att-layer').fill('0');
    await expect.poll(() => panel.getAttribute('data-layer')).toBe('0');
    await checkAttentionPanel(page, src, tokens, q, 0, 'mean');
    const oneHead = src.heads - 1;
    await page.getByTestId('flow-head').selectOption(String(oneHead));
    await expect.poll(() => panel.getAttribute('data-head')).toBe(String(oneHead));
    await checkAttentionPanel(page, src, tokens, q, 0, oneHead);
    await page.getByTestId('flow-head').selectOption('mean');
    await page.getByTestId('flow-att-layer').fill(String(src.layers - 1));
    await expect.poll(() => panel.getAttribute('data-layer')).toBe(String(src.layers - 1));
    await page.screenshot({ path: join(SHOTS, 'flow.png') });

    // Backward only: fewer (or as many) traced edges; a higher threshold drops edges.
    await page.getByTestId('flow-direction').selectOption('backward');
    const [plane2, token2] = ((await view.getAttribute('data-selected')) ?? '').split(':').map(Number) as [number, number];
    expect(token2).toBe(q);
    await expect.poll(async () => Number(await view.getAttribute('data-traced'))).toBe(traceFlow(edges, src.seq, plane2, token2, 'backward').edges.length);
    await page.getByTestId('flow-threshold').fill('0.5');
    const fewer = selectEdges(src, { layerFrom: 0, layerTo: src.layers - 1, head: 'mean', threshold: 0.5, maxEdges: 60000 }).count;
    await expect.poll(async () => Number(await view.getAttribute('data-edges'))).toBe(fewer);
    await page.close();
  });

  it('labels layers and token kinds, shows a legend with the colour scale, and clears on a run without attention', async () => {
    const page = await open(`#/flow?run=${runId}&item=${result.itemId}`);
    const view = page.getByTestId('flow-view');
    await expect.poll(async () => Number(await view.getAttribute('data-edges')), { timeout: 30_000 }).toBeGreaterThan(0);
    const atts = await Promise.all(result.tensors.filter((t) => t.name.startsWith('text.attentions.')).map((t) => client.tensor(t.id)));
    const src = tensorAttention(atts);
    const edges = selectEdges(src, { layerFrom: 0, layerTo: src.layers - 1, head: 'mean', threshold: 0.1, maxEdges: 60000 });
    // One label per plane: the inputs of layers 0 … L−1, then the last layer's output.
    const planes = page.getByTestId('flow-plane-label');
    await expect.poll(() => planes.count()).toBe(src.layers + 1);
    expect(await planes.allTextContents()).toEqual([...Array.from({ length: src.layers }, (_, l) => `L${l}`), `L${src.layers - 1} out`]);
    // Some are shown (the rest hidden only where they would overlap), each placed inside the stage.
    const shown = await planes.evaluateAll((els) => els.filter((e) => !(e as unknown as { hidden: boolean }).hidden).length);
    expect(shown).toBeGreaterThan(0);
    const kinds = page.getByTestId('flow-kind-label');
    const tokens = parseTokenMap(await client.tensor(result.tensors.find((x) => x.name === 'image_token_map')!.id));
    expect(await kinds.allTextContents()).toEqual([`image tokens (${tokens.length})`, `text tokens (${src.seq - tokens.length})`]);
    // Legend: the colour scale runs from the threshold to the strongest edge drawn.
    const scale = page.getByTestId('flow-scale');
    await expect.poll(() => scale.getAttribute('data-hi')).toBe(String(Math.max(...edges.weight)));
    expect(await scale.getAttribute('data-lo')).toBe('0.1');
    expect(await page.getByTestId('flow-legend').textContent()).toContain('image token');
    await page.screenshot({ path: join(SHOTS, 'flow-labels.png') });

    // Another run, without attention: nothing of the previous graph stays.
    await page.getByTestId('flow-run').selectOption(plainRunId);
    await expect.poll(() => page.getByTestId('flow-problem').textContent()).toContain('stored no LLM attention');
    expect(Number(await view.getAttribute('data-edges'))).toBe(0);
    expect(Number(await view.getAttribute('data-drawn-tokens'))).toBe(0);
    expect(await planes.count()).toBe(0);
    expect(await page.getByTestId('flow-legend').count()).toBe(0);
    expect(await page.getByTestId('flow-att-panel').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'flow-cleared.png') });
    // And back: the graph returns.
    await page.getByTestId('flow-run').selectOption(runId);
    await expect.poll(async () => Number(await view.getAttribute('data-edges')), { timeout: 30_000 }).toBe(edges.count);
    await expect.poll(() => planes.count()).toBe(src.layers + 1);
    await page.close();
  });

  /**
   * The panel's overlays against the maps computed here: every cell drawn (opaque), the cell of
   * the highest weight at the top of the viridis ramp (the bottom when the image got no weight),
   * the printed scale max equal to the computed one.
   */
  async function checkAttentionPanel(page: Page, src: AttentionSource, tokens: ImageToken[], query: number, layer: number, head: HeadSelect) {
    const maps = attentionOnImages(src, tokens, query, layer, head);
    for (const [i, m] of maps.entries()) {
      await expect.poll(() => page.getByTestId(`flow-att-max-${i}`).textContent()).toBe(m.max.toPrecision(3));
      const px = await page.getByTestId(`flow-att-overlay-${i}`).evaluate((el, [r, c]) => {
        const cv = el as unknown as Canvas;
        const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let opaque = 0;
        for (let k = 3; k < d.length; k += 4) if (d[k]! > 0) opaque++;
        const o = (r! * cv.width + c!) * 4;
        return { w: cv.width, h: cv.height, opaque, top: Array.from(d.slice(o, o + 4)) };
      }, [Math.floor(m.argmax / m.cols), m.argmax % m.cols]);
      expect([px.h, px.w]).toEqual([m.rows, m.cols]);
      expect(px.opaque).toBe(m.rows * m.cols);
      expect(px.top).toEqual(m.max > 0 ? [253, 231, 37, 255] : [68, 1, 84, 255]);
    }
    return maps;
  }

  it('LOD: a held drag draws the strongest N edges at half resolution, the frame after the stop every edge again', async () => {
    const page = await open(`#/flow?run=${runId}&item=${result.itemId}`);
    const view = page.getByTestId('flow-view');
    await expect.poll(async () => Number(await view.getAttribute('data-edges')), { timeout: 30_000 }).toBeGreaterThan(0);
    const total = Number(await view.getAttribute('data-edges'));
    const tokens = Number(await view.getAttribute('data-tokens'));
    expect(total).toBeGreaterThan(3);
    expect(tokens).toBeGreaterThan(0);
    await expect.poll(async () => Number(await view.getAttribute('data-drawn-edges'))).toBe(total);
    const canvas = () =>
      view.locator('canvas').evaluate((c) => {
        const el = c as unknown as { width: number; clientWidth: number };
        return { width: el.width, css: el.clientWidth };
      });
    const still = await canvas();
    expect(still.width).toBe(still.css);

    await page.getByTestId('flow-lod-mode').selectOption('fixed');
    await page.getByTestId('flow-lod-edges').fill('3');
    await expect.poll(() => view.getAttribute('data-lod-mode')).toBe('fixed');
    const box = (await view.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.45, { steps: 12 });
    await expect.poll(() => view.getAttribute('data-lod-moving')).toBe('yes');
    expect(Number(await view.getAttribute('data-drawn-edges'))).toBe(3);
    expect(Number(await view.getAttribute('data-drawn-tokens'))).toBe(tokens);
    expect(Number(await view.getAttribute('data-pixel-ratio'))).toBe(0.5);
    expect((await canvas()).width).toBe(Math.floor(still.css * 0.5));
    expect(await page.getByTestId('flow-lod').textContent()).toContain(`showing 3 of ${total.toLocaleString('en-US')} edges while moving`);
    // Still holding the drag, camera at rest: stays reduced until the release.
    await page.waitForTimeout(400);
    expect(await view.getAttribute('data-lod-moving')).toBe('yes');

    await page.mouse.up();
    await expect.poll(() => view.getAttribute('data-lod-moving')).toBe('no');
    expect(Number(await view.getAttribute('data-drawn-edges'))).toBe(total);
    expect(Number(await view.getAttribute('data-drawn-tokens'))).toBe(tokens);
    expect(Number(await view.getAttribute('data-pixel-ratio'))).toBe(1);
    expect((await canvas()).width).toBe(still.css);
    expect(await page.getByTestId('flow-lod').textContent()).toContain(`the last move showed 3 of ${total.toLocaleString('en-US')} edges`);
    expect(await view.getAttribute('data-selected')).toBe(''); // a drag is not a click
    await page.close();
  });
});

describe('readout stage curve', () => {
  it('labels the right-edge lines without overlap, has a legend entry per series, draws the shuffled control as a line', async () => {
    const run = await client.call('jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: 'shape-at-point', spec: { limit: 16 } });
    await waitForRun(client, run.id, 180_000, 500);
    const summary = await client.call('readout/summary', { runId: run.id });
    const page = await openWorkbench(browser, `${server.url}#/runs`, { width: 1360, height: 1100 });
    await page.locator(`[data-testid="run-row"][data-run="${run.id}"]`).click();
    const labels = page.getByTestId('ref-label');
    await expect.poll(() => labels.count(), { timeout: 60_000 }).toBe(3);
    const ys = (await labels.evaluateAll((els) => els.map((e) => Number((e as unknown as { getAttribute(a: string): string }).getAttribute('y'))))).sort((a, b) => a - b);
    // 11 px text: every label at least 13 px from the next.
    for (let k = 1; k < ys.length; k++) expect(ys[k]! - ys[k - 1]!).toBeGreaterThanOrEqual(13);
    expect(await labels.allTextContents()).toEqual([`VLM answer ${summary.answer.accuracy.toFixed(2)}`, `blind ${summary.blind.accuracy.toFixed(2)}`, `chance ${summary.chance.toFixed(2)}`]);
    // The legend names the main series and the control, not only the extra readouts.
    const series = await page.getByTestId('readout-legend').locator('[data-series]').evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-series')));
    expect(series.slice(0, 2)).toEqual(['readout', 'shuffled']);
    expect(series).toEqual(expect.arrayContaining(['answer', 'blind', 'chance']));
    // The shuffled-label control: one vertex per stage that has it.
    const d = (await page.getByTestId('readout-shuffled').getAttribute('d'))!;
    expect(d.match(/[ML]/g)!.length).toBe(summary.stages.filter((s) => s.shuffledAccuracy !== null).length);
    await page.screenshot({ path: join(SHOTS, 'readout-chart.png') });
    await page.close();
  });
});
