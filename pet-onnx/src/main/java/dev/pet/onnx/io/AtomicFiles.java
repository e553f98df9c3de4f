package dev.pet.onnx.io;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * The one way PET Runtime replaces a file or a directory: write everything into a uniquely named temporary sibling,
 * flush it to disk, then rename it over the target. Readers (and a process restarted after a kill) see either the
 * old content or the complete new one, never a mix; the temporary is removed on every failure path.
 *
 * <p>Methods throw {@link IOException}; callers wrap it in their own exception naming what they were writing.
 */
public final class AtomicFiles {
    /** Prefix of temporary files and directories, so leftovers from a killed process are recognisable. */
    public static final String TEMP_PREFIX = ".tmp-";
    private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();

    private AtomicFiles() {
    }

    /** Writes the content of a file through a channel positioned at 0. */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    /** Writes the content of a file through a stream (buffer it if you write small pieces). */
    @FunctionalInterface
    public interface StreamWriter {
        void write(OutputStream out) throws IOException;
    }

    /** Fills an empty directory. */
    @FunctionalInterface
    public interface DirectoryWriter {
        void write(Path directory) throws IOException;
    }

    /**
     * Replaces {@code file} with what {@code writer} writes, creating the parent directories. The data is forced
     * to disk before the rename, so after a crash the file holds the old or the new content in full.
     */
    public static void write(Path file, ChannelWriter writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        Path target = file.toAbsolutePath();
        Path parent = target.getParent();
        Files.createDirectories(parent);
        Path tmp = parent.resolve(tempName(target.getFileName().toString()));
        try {
            try (FileChannel channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
                    StandardOpenOption.WRITE)) {
                writer.write(channel);
                channel.force(true);
            }
            move(tmp, target);
            tmp = null;
            syncDirectory(parent);
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** {@link #write(Path, ChannelWriter)} through a stream. */
    public static void writeStream(Path file, StreamWriter writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        write(file, channel -> {
            OutputStream out = Channels.newOutputStream(channel);
            writer.write(out);
            out.flush();
        });
    }

    /** Replaces {@code file} with {@code bytes}. */
    public static void write(Path file, byte[] bytes) throws IOException {
        Objects.requireNonNull(bytes, "bytes");
        write(file, channel -> writeFully(channel, ByteBuffer.wrap(bytes)));
    }

    /** Replaces {@code file} with {@code text} in UTF-8. */
    public static void writeString(Path file, String text) throws IOException {
        write(file, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Replaces {@code file} with {@code lines}, each followed by a newline, in UTF-8. */
    public static void writeLines(Path file, List<String> lines) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (String line : lines) {
            sb.append(line).append('\n');
        }
        writeString(file, sb.toString());
    }

    /**
     * Replaces the directory {@code target} with one that {@code writer} fills: the writer works in a temporary
     * sibling directory, whose files are forced to disk before it is renamed into place; an existing
     * {@code target} is moved aside first and deleted only after the new one is in place. On any failure the
     * temporary directory is deleted and {@code target} keeps its old content (a kill between the two renames
     * leaves only temporaries named with {@link #TEMP_PREFIX}, which {@link #deleteTemporaries} removes).
     */
    public static void replaceDirectory(Path target, DirectoryWriter writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        replace(target, staged -> {
            Files.createDirectory(staged);
            writer.write(staged);
        });
    }

    /** Creates, at a fresh path, what the target should become: a file or a directory. */
    @FunctionalInterface
    public interface StagedWriter {
        void write(Path staged) throws IOException;
    }

    /**
     * Replaces {@code target}, a file or a directory, with what {@code writer} creates at a fresh sibling path, as
     * {@link #replaceDirectory} does (forced to disk, renamed into place, the old content moved aside and deleted
     * last, every temporary removed on failure).
     */
    public static void replace(Path target, StagedWriter writer) throws IOException {
        Objects.requireNonNull(writer, "writer");
        Path abs = target.toAbsolutePath();
        Path parent = abs.getParent();
        Files.createDirectories(parent);
        Path staged = parent.resolve(tempName(abs.getFileName().toString()));
        try {
            writer.write(staged);
            syncTree(staged);
            if (Files.exists(abs, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                Path old = parent.resolve(tempName("old-" + abs.getFileName()));
                move(abs, old);
                move(staged, abs);
                deleteTree(old);
            } else {
                move(staged, abs);
            }
            syncDirectory(parent);
        } finally {
            deleteTree(staged);
        }
    }

    /** Deletes the temporaries a killed writer may have left in {@code directory} (names starting with the prefix). */
    public static void deleteTemporaries(Path directory) throws IOException {
        if (!Files.isDirectory(directory)) {
            return;
        }
        try (Stream<Path> entries = Files.list(directory)) {
            for (Path p : entries.filter(p -> p.getFileName().toString().startsWith(TEMP_PREFIX)).toList()) {
                deleteTree(p);
            }
        }
    }

    /** Renames {@code from} to {@code to} atomically, replacing a file {@code to}; a plain rename where the file
     * system cannot do it atomically (both are always in one directory here, where POSIX renames are atomic). */
    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Deletes a file or a directory tree; nothing when it does not exist. */
    public static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Writes the whole buffer (a channel may write less than asked). */
    public static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /** A fresh sibling name; unlike {@code Files.createTempFile} it keeps the default (umask) permissions. */
    private static String tempName(String base) {
        return TEMP_PREFIX + base + "-" + Long.toUnsignedString(RANDOM.nextLong(), 36) + ".tmp";
    }

    private static void syncTree(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.toList()) {
                if (Files.isRegularFile(p)) {
                    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
                        ch.force(true);
                    }
                } else if (Files.isDirectory(p)) {
                    syncDirectory(p);
                }
            }
        }
    }

    /** Forces a directory's entries (the rename) to disk where the platform allows it. */
    static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Not every platform can sync a directory; the rename is still atomic.
        }
    }
}
