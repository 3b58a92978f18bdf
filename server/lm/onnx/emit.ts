// Serialise a Graph to ONNX ModelProto bytes. Large initializers can go to an external-data file,
// which is how models past protobuf's 2 GB limit load.
import fs from 'node:fs';
import path from 'node:path';
import type { onnx as OnnxNs } from 'onnx-proto';
import { type Graph, type Shape, ONNX_DTYPE, initializerByteLength, initializerData, onnx, tensorProto } from './graph.ts';

export const OPSET = 23;
const IR_VERSION = 10;

function valueInfo(name: string, dtype: keyof typeof ONNX_DTYPE, shape: Shape): OnnxNs.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[dtype],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d === '?' ? undefined : d })) },
      },
    },
  });
}

function buildModel(g: Graph, initializer: OnnxNs.ITensorProto[]): OnnxNs.ModelProto {
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'attune',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: onnx.GraphProto.create({
      name: g.name,
      node: g.finalNodes(),
      initializer,
      input: g.inputs.map((t) => valueInfo(t.name, t.dtype, t.shape)),
      output: g.outputs.map((o) => valueInfo(o.name, o.t.dtype, o.t.shape)),
    }),
  });
}

/** The whole model in one buffer (weights inline): fine below protobuf's 2 GB limit. */
export function toModelBytes(g: Graph): Uint8Array {
  const inits = g.initializers.map((i) => tensorProto(i.name, i.dtype, i.dims, initializerData(i)));
  return onnx.ModelProto.encode(buildModel(g, inits)).finish();
}

/**
 * Write `<file>` and `<file>.data`: initializers of at least `minExternalBytes` go to the data file,
 * aligned to 64 bytes, so onnxruntime can load models whose weights pass 2 GB.
 */
export function writeModelWithExternalData(g: Graph, file: string, minExternalBytes = 1024): void {
  const dataName = `${path.basename(file)}.data`;
  const fd = fs.openSync(path.join(path.dirname(file), dataName), 'w');
  let offset = 0;
  const inits: OnnxNs.ITensorProto[] = [];
  try {
    // One tensor at a time: lazy weights are read, written and dropped before the next.
    for (const i of g.initializers) {
      if (initializerByteLength(i) < minExternalBytes) {
        inits.push(tensorProto(i.name, i.dtype, i.dims, initializerData(i)));
        continue;
      }
      const data = initializerData(i);
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      const pad = (64 - (offset % 64)) % 64;
      if (pad) fs.writeSync(fd, new Uint8Array(pad));
      offset += pad;
      fs.writeSync(fd, bytes);
      inits.push(
        onnx.TensorProto.create({
          name: i.name,
          dims: i.dims,
          dataType: ONNX_DTYPE[i.dtype],
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: dataName },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(bytes.byteLength) },
          ],
        }),
      );
      offset += bytes.byteLength;
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.writeFileSync(file, onnx.ModelProto.encode(buildModel(g, inits)).finish());
}
