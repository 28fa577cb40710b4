/**
 * The spec being composed in the Ablation view, shared with the sweep composer (its "custom"
 * family adds it as one more spec). Renderer state only; null while the draft does not validate.
 */
import type { AblationSpec } from '../../../../src-shared/ablation/spec.ts';

export const composedSpec = $state<{ spec: AblationSpec | null; modelId: string }>({ spec: null, modelId: '' });
