/**
 * A one-node ONNX model (Y = X + X) built in memory, used to check that an execution
 * provider really initialises on this machine before any user model is loaded
 * (e.g. WebGPU on Linux needs a Vulkan loader; CUDA needs the NuGet-downloaded libraries).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';

export function probeModelBytes(): Uint8Array {
  const io = (name: string) => ({
    name,
    type: { value: { case: 'tensorType' as const, value: { elemType: TensorProto_DataType.FLOAT, shape: { dim: [{ value: { case: 'dimValue' as const, value: 4n } }] } } } },
  });
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 17n }],
    producerName: 'loupe-provider-probe',
    graph: {
      name: 'probe',
      node: [{ opType: 'Add', input: ['X', 'X'], output: ['Y'], name: 'add' }],
      input: [io('X')],
      output: [io('Y')],
    },
  });
  return toBinary(ModelProtoSchema, model);
}
