package dev.pet.onnx.io;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes ONNX Runtime's {@code .onnx_adapter} files (FlatBuffers, schema {@code onnxruntime.adapters.Adapter}, file
 * identifier {@code TORT}): format, adapter and model versions and a list of parameters (name, dims, ONNX data type,
 * raw little-endian bytes aligned to 8). {@code OrtLoraAdapter} loads them and a run with the adapter active feeds
 * the parameters to the graph inputs of the same names.
 *
 * <p>The buffer is laid out front to back so every unsigned offset points forward, as FlatBuffers requires; each
 * table is preceded by its vtable.
 */
public final class OrtAdapterFile {
    /** The adapter format version ONNX Runtime reads. */
    public static final int FORMAT_VERSION = 1;

    private OrtAdapterFile() {
    }

    public static void write(Path file, Map<String, Tensor> parameters, int adapterVersion, int modelVersion) {
        byte[] bytes = encode(parameters, adapterVersion, modelVersion);
        try {
            AtomicFiles.write(file, bytes);
        } catch (IOException e) {
            throw new OnnxException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /** A little-endian byte sink that tracks positions and patches earlier slots. */
    private static final class Buf {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        int pos() {
            return out.size();
        }

        void align(int n) {
            while (out.size() % n != 0) {
                out.write(0);
            }
        }

        /** Pads so that {@code pos() + prefix} is a multiple of {@code n} (a length prefix before aligned data). */
        void alignAfter(int prefix, int n) {
            while ((out.size() + prefix) % n != 0) {
                out.write(0);
            }
        }

        void i16(int v) {
            out.write(v & 0xff);
            out.write((v >>> 8) & 0xff);
        }

        void i32(int v) {
            i16(v & 0xffff);
            i16((v >>> 16) & 0xffff);
        }

        void i64(long v) {
            i32((int) v);
            i32((int) (v >>> 32));
        }

        void bytes(byte[] b) {
            out.write(b, 0, b.length);
        }

        byte[] toArray() {
            return out.toByteArray();
        }
    }

    static byte[] encode(Map<String, Tensor> parameters, int adapterVersion, int modelVersion) {
        Buf b = new Buf();
        b.i32(0); // root offset, patched
        b.bytes("TORT".getBytes(StandardCharsets.US_ASCII));
        // Adapter vtable: 4 fields, table of soffset + 3 ints + 1 offset = 20 bytes.
        int adapterVtable = b.pos();
        b.i16(4 + 2 * 4);
        b.i16(20);
        b.i16(4);
        b.i16(8);
        b.i16(12);
        b.i16(16);
        b.align(4);
        int adapterTable = b.pos();
        b.i32(adapterTable - adapterVtable);
        b.i32(FORMAT_VERSION);
        b.i32(adapterVersion);
        b.i32(modelVersion);
        int parametersSlot = b.pos();
        b.i32(0); // patched: offset to the parameters vector
        b.align(4);
        int vector = b.pos();
        b.i32(parameters.size());
        int firstElement = b.pos();
        for (int i = 0; i < parameters.size(); i++) {
            b.i32(0); // patched: offsets to Parameter tables
        }
        int[] tableAt = new int[parameters.size()];
        List<int[]> later = new ArrayList<>();
        int k = 0;
        for (Map.Entry<String, Tensor> e : parameters.entrySet()) {
            Tensor t = e.getValue();
            b.align(2);
            int vt = b.pos();
            b.i16(4 + 2 * 4);
            b.i16(20);
            b.i16(4);
            b.i16(8);
            b.i16(12);
            b.i16(16);
            b.align(4);
            int table = b.pos();
            tableAt[k++] = table;
            b.i32(table - vt);
            int nameSlot = b.pos();
            b.i32(0);
            int dimsSlot = b.pos();
            b.i32(0);
            b.i32(t.dataType().onnxCode());
            int dataSlot = b.pos();
            b.i32(0);
            // name
            b.align(4);
            int name = b.pos();
            byte[] nb = e.getKey().getBytes(StandardCharsets.UTF_8);
            b.i32(nb.length);
            b.bytes(nb);
            b.bytes(new byte[] {0});
            // dims: int64 elements 8-aligned
            b.alignAfter(4, 8);
            int dims = b.pos();
            long[] shape = t.shape();
            b.i32(shape.length);
            for (long d : shape) {
                b.i64(d);
            }
            // raw_data: force_align 8
            b.alignAfter(4, 8);
            int data = b.pos();
            ByteBuffer bytes = t.buffer();
            byte[] raw = new byte[bytes.remaining()];
            bytes.get(raw);
            b.i32(raw.length);
            b.bytes(raw);
            later.add(new int[] {nameSlot, name, dimsSlot, dims, dataSlot, data});
        }
        b.align(8);
        ByteBuffer out = ByteBuffer.wrap(b.toArray()).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(0, adapterTable);
        out.putInt(parametersSlot, vector - parametersSlot);
        for (int i = 0; i < tableAt.length; i++) {
            int slot = firstElement + 4 * i;
            out.putInt(slot, tableAt[i] - slot);
        }
        for (int[] l : later) {
            out.putInt(l[0], l[1] - l[0]);
            out.putInt(l[2], l[3] - l[2]);
            out.putInt(l[4], l[5] - l[4]);
        }
        return out.array();
    }
}
