package dev.pet.onnx.io;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * A temporary file of tensors this process made (seeded random weights, quantized copies of frozen weights), so that
 * they reach ONNX Runtime as file regions ({@link FileData}) like a checkpoint's: ORT memory-maps them instead of
 * copying them from Java memory, and the Java heap never holds more than the tensor being written.
 *
 * <p>The file is raw little-endian tensor bytes, appended tensor by tensor, each at an offset aligned to a page; it
 * has no header because nothing but this process reads it, through the returned tensors. A tensor is returned only
 * after its bytes are written. The file is deleted when this object and every tensor read from it are unreachable
 * (each tensor's {@link FileData} keeps it), on {@link #close()}, or at JVM exit; files that killed processes left
 * behind are deleted by the next process that makes one. All scratch files live in one folder,
 * {@code <java.io.tmpdir>/pet-scratch}, because ORT reads file-backed initializers from one folder per session.
 */
public final class ScratchFile implements AutoCloseable {
    /** The folder of scratch files under {@code java.io.tmpdir}. */
    public static final String FOLDER = "pet-scratch";
    private static final long ALIGNMENT = 4096;
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong COUNTER = new AtomicLong();

    private final Path path;
    private final Cleaner.Cleanable deletion;
    private long end;

    private ScratchFile(Path path) {
        this.path = path;
        this.deletion = CLEANER.register(this, new Deletion(path));
    }

    /** Deletes the file; holds no reference to the {@link ScratchFile}, so that it can become unreachable. */
    private record Deletion(Path path) implements Runnable {
        @Override
        public void run() {
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                // Left for the next process's sweep of dead processes' files.
            }
        }
    }

    /** A new empty scratch file; {@code purpose} ("random", "quantized") goes into its name. */
    public static ScratchFile create(String purpose) {
        Objects.requireNonNull(purpose, "purpose");
        Path folder = folder();
        long pid = ProcessHandle.current().pid();
        Path file = folder.resolve(pid + "-" + COUNTER.incrementAndGet() + "-" + purpose + ".bin");
        try {
            Files.createDirectories(folder);
            deleteDeadProcessFiles(folder);
            Files.createFile(file);
        } catch (IOException e) {
            throw new OnnxException("cannot create scratch file " + file + ": " + e.getMessage(), e);
        }
        file.toFile().deleteOnExit();
        return new ScratchFile(file);
    }

    /** The folder scratch files are made in. */
    public static Path folder() {
        return Path.of(System.getProperty("java.io.tmpdir")).resolve(FOLDER).toAbsolutePath().normalize();
    }

    public Path path() {
        return path;
    }

    /**
     * Appends the tensors' bytes (written in parallel, each streamed by its {@code TensorData.writeTo}, so a
     * generated tensor is never whole in memory) and returns them, in order, as regions of this file.
     */
    public List<Tensor> append(List<Tensor> tensors) {
        long[] offsets = new long[tensors.size()];
        synchronized (this) {
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = end;
                end = align(Math.addExact(end, tensors.get(i).byteSize()));
            }
        }
        long disk = path.toFile().getUsableSpace();
        long need = offsets.length == 0 ? 0 : end - offsets[0];
        if (need > disk) {
            throw new OnnxException("scratch file " + path + " needs " + need + " more bytes, but only " + disk
                    + " are free on its file system");
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE)) {
            IntStream.range(0, offsets.length).parallel().forEach(i -> {
                Tensor t = tensors.get(i);
                Positioned out = new Positioned(ch, offsets[i]);
                try {
                    t.data().writeTo(out);
                } catch (IOException e) {
                    throw new OnnxException("cannot write " + t + " to scratch file " + path + ": "
                            + e.getMessage(), e);
                }
                if (out.position != offsets[i] + t.byteSize()) {
                    throw new IllegalStateException("wrote " + (out.position - offsets[i]) + " bytes of " + t);
                }
            });
        } catch (IOException e) {
            throw new OnnxException("cannot write scratch file " + path + ": " + e.getMessage(), e);
        }
        List<Tensor> out = new ArrayList<>(offsets.length);
        for (int i = 0; i < offsets.length; i++) {
            Tensor t = tensors.get(i);
            out.add(new Tensor(t.dataType(), t.shape(), new FileData(path, offsets[i], t.byteSize(), this)));
        }
        return out;
    }

    /** Deletes the file now; tensors read from it must no longer be used (a mapping already made stays valid). */
    @Override
    public void close() {
        deletion.clean();
    }

    private static long align(long offset) {
        return (offset + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** A channel that writes at a moving position of a shared file channel (positional writes are thread-safe). */
    private static final class Positioned implements WritableByteChannel {
        private final FileChannel channel;
        private long position;

        Positioned(FileChannel channel, long position) {
            this.channel = channel;
            this.position = position;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            int n = channel.write(src, position);
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return channel.isOpen();
        }

        @Override
        public void close() {
            // The shared channel is closed by its owner.
        }
    }

    /** Deletes the files of processes that are no longer running (a killed JVM runs no cleaner or exit hook). */
    private static void deleteDeadProcessFiles(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            for (Path p : files.toList()) {
                String name = p.getFileName().toString();
                int dash = name.indexOf('-');
                if (dash <= 0) {
                    continue;
                }
                try {
                    long pid = Long.parseLong(name.substring(0, dash));
                    if (ProcessHandle.of(pid).isEmpty()) {
                        Files.deleteIfExists(p);
                    }
                } catch (NumberFormatException | IOException e) {
                    // Not a scratch file, or deleted meanwhile: leave it.
                }
            }
        }
    }
}
