package dev.pet.runtime.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import dev.pet.onnx.io.AtomicFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import dev.pet.runtime.checkpoint.Checksums;

/**
 * Tokenized corpora on disk: {@code KEY.tokens} (int32 little-endian) and, for masked data, {@code KEY.mask} (one
 * byte per token). The key hashes the file contents, the tokenizer id and the cleaning version, so a second run
 * with the same inputs maps the cache instead of tokenizing again. Files are written under temporary names and
 * renamed into place, the tokens file last: a crash never leaves a cache that looks complete. {@code KEY.sha256}
 * records the size and SHA-256 of the tokens (and mask) file; an entry that does not match it (edited, truncated,
 * a flipped bit) or has none is reported and rebuilt from the corpus, never used.
 */
public final class TokenCache {
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.data");
    private static final String FORMAT = "pet-token-cache/1";

    private final Path directory;

    public TokenCache(Path directory) {
        this.directory = Objects.requireNonNull(directory, "directory");
    }

    public Path directory() {
        return directory;
    }

    /** The default location: {@code $PET_CACHE_DIR/tokens}, else {@code ~/.cache/pet/tokens}. */
    public static TokenCache defaultCache() {
        String env = System.getenv("PET_CACHE_DIR");
        Path base = env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache", "pet");
        return new TokenCache(base.resolve("tokens"));
    }

    /** Receives the tokens of a corpus in order while a cache entry is being built. */
    public interface Sink {
        /** Appends tokens; {@code inLoss} says whether they count in the loss as targets. */
        void append(long[] tokens, boolean inLoss);
    }

    /** Produces a corpus's tokens into a sink; may throw {@link IOException} from reading its files. */
    @FunctionalInterface
    public interface Producer {
        void produce(Sink sink) throws IOException;
    }

    /** Key of a corpus: its format, its files' names and content hashes, the tokenizer and the cleaning version. */
    public static String key(String format, Path root, List<Path> files, String tokenizerId, String cleaningVersion) {
        MessageDigest digest = sha256();
        update(digest, FORMAT);
        update(digest, format);
        update(digest, tokenizerId);
        update(digest, cleaningVersion);
        for (Path file : files) {
            update(digest, (Files.isDirectory(root) ? root.relativize(file) : file.getFileName()).toString());
            update(digest, contentHash(file));
        }
        return HexFormat.of().formatHex(digest.digest()).substring(0, 32);
    }

    static String contentHash(Path file) {
        try {
            return Checksums.sha256(file);
        } catch (IOException e) {
            throw new DataException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static void update(MessageDigest digest, String s) {
        byte[] bytes = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        digest.update(ByteBuffer.allocate(4).putInt(bytes.length).array());
        digest.update(bytes);
    }

    private static MessageDigest sha256() {
        return Checksums.newSha256();
    }

    /** Whether a complete entry exists for {@code key}. */
    public boolean contains(String key) {
        return Files.isRegularFile(directory.resolve(key + ".tokens"));
    }

    /** Maps the entry for {@code key}, building it first with {@code producer} when it is missing. */
    public TokenSequence getOrBuild(String key, boolean masked, Producer producer) {
        Path tokens = directory.resolve(key + ".tokens");
        Path mask = directory.resolve(key + ".mask");
        Path sums = directory.resolve(key + ".sha256");
        if (Files.isRegularFile(tokens)) {
            String problem = verify(tokens, masked ? mask : null, sums);
            if (problem == null) {
                LOG.log(System.Logger.Level.DEBUG, "token cache hit {0}", tokens);
                return open(tokens, masked ? mask : null, MappedTokens.DEFAULT_SEGMENT_BYTES);
            }
            LOG.log(System.Logger.Level.WARNING, "token cache entry {0} is not intact ({1}); rebuilding it from the "
                    + "corpus", tokens, problem);
        }
        build(key, masked, producer, tokens, mask, sums);
        return open(tokens, masked ? mask : null, MappedTokens.DEFAULT_SEGMENT_BYTES);
    }

    /** Null when the entry's files match {@code sums}; else what is wrong, naming the file. */
    static String verify(Path tokens, Path mask, Path sums) {
        try {
            if (!Files.isRegularFile(sums) || Files.size(sums) > 4096) {
                return sums + " is missing";
            }
            List<String> expected = Files.readAllLines(sums, java.nio.charset.StandardCharsets.US_ASCII);
            List<String> actual = new java.util.ArrayList<>();
            actual.add(sumLine(tokens));
            if (mask != null) {
                if (!Files.isRegularFile(mask)) {
                    return mask + " is missing";
                }
                actual.add(sumLine(mask));
            }
            for (int i = 0; i < actual.size(); i++) {
                if (i >= expected.size() || !expected.get(i).equals(actual.get(i))) {
                    return (i == 0 ? tokens : mask) + " does not match its size and SHA-256 in " + sums.getFileName();
                }
            }
            return expected.size() == actual.size() ? null : sums + " lists other files";
        } catch (IOException e) {
            return "cannot read it: " + e.getMessage();
        }
    }

    /** {@code <sha256>  <size>  <name>}: one line per file, like sha256sum plus the size. */
    private static String sumLine(Path file) throws IOException {
        return Checksums.sha256(file) + "  " + Files.size(file) + "  " + file.getFileName().toString()
                .replaceFirst("^.*?\\.(tokens|mask)$", "$1");
    }

    static TokenSequence open(Path tokens, Path mask, long segmentBytes) {
        try {
            long size = Files.size(tokens);
            if (size % 4 != 0) {
                throw new DataException(tokens + ": cache file size " + size + " is not a multiple of 4; delete it");
            }
            MappedTokens maskTokens = mask == null ? null
                    : MappedTokens.map(mask, 0, Files.size(mask), MappedTokens.Width.U8, null, segmentBytes);
            return MappedTokens.map(tokens, 0, size / 4, MappedTokens.Width.I32, maskTokens, segmentBytes);
        } catch (IOException e) {
            throw new DataException("cannot open token cache " + tokens + ": " + e.getMessage(), e);
        }
    }

    /**
     * Writes the entry's files through {@link AtomicFiles}: the mask and the checksums are in place before the tokens
     * file appears, so an entry whose tokens file exists is complete ({@link #contains}); a failed or killed build
     * leaves only {@link AtomicFiles#TEMP_PREFIX} temporaries.
     */
    private void build(String key, boolean masked, Producer producer, Path tokens, Path mask, Path sums) {
        long started = System.nanoTime();
        long[] count = new long[1];
        try {
            Files.createDirectories(directory);
            AtomicFiles.write(tokens, tokenChannel -> {
                ChannelSink sink = new ChannelSink(tokenChannel);
                if (masked) {
                    AtomicFiles.write(mask, maskChannel -> {
                        sink.mask = maskChannel;
                        sink.produce(producer);
                    });
                } else {
                    sink.produce(producer);
                }
                count[0] = sink.count;
                AtomicFiles.writeString(sums, sink.sumLines());
            });
            LOG.log(System.Logger.Level.DEBUG, "tokenized {0} tokens into {1} in {2} ms", count[0], tokens,
                    (System.nanoTime() - started) / 1_000_000);
        } catch (IOException e) {
            throw new DataException("cannot build token cache in " + directory + ": " + e.getMessage(), e);
        }
    }

    /** Streams tokens (and the loss mask) into channels, digesting what it writes for the checksum file. */
    private static final class ChannelSink implements Sink {
        private final FileChannel tokens;
        private FileChannel mask;
        private final ByteBuffer tokenBuffer = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private final ByteBuffer maskBuffer = ByteBuffer.allocate(1 << 14);
        private final MessageDigest tokenDigest = Checksums.newSha256();
        private final MessageDigest maskDigest = Checksums.newSha256();
        long count;

        ChannelSink(FileChannel tokens) {
            this.tokens = tokens;
        }

        void produce(Producer producer) throws IOException {
            producer.produce(this);
            drain(tokenBuffer, tokens, tokenDigest);
            if (mask != null) {
                drain(maskBuffer, mask, maskDigest);
            }
        }

        /** The checksum file's lines, as {@link #sumLine} gives them for the finished files. */
        String sumLines() {
            // Sizes from the count: the mask's channel is closed (and renamed) by now.
            String lines = line(tokenDigest, 4 * count, "tokens");
            return mask == null ? lines : lines + line(maskDigest, count, "mask");
        }

        private static String line(MessageDigest digest, long size, String name) {
            return HexFormat.of().formatHex(digest.digest()) + "  " + size + "  " + name + "\n";
        }

        @Override
        public void append(long[] ids, boolean inLoss) {
            try {
                for (long id : ids) {
                    if (id < 0 || id > Integer.MAX_VALUE) {
                        throw new DataException("token id " + id + " does not fit the int32 token cache");
                    }
                    if (!tokenBuffer.hasRemaining()) {
                        drain(tokenBuffer, tokens, tokenDigest);
                    }
                    tokenBuffer.putInt((int) id);
                    if (mask != null) {
                        if (!maskBuffer.hasRemaining()) {
                            drain(maskBuffer, mask, maskDigest);
                        }
                        maskBuffer.put((byte) (inLoss ? 1 : 0));
                    }
                    count++;
                }
            } catch (IOException e) {
                throw new DataException("cannot write token cache: " + e.getMessage(), e);
            }
        }

        private static void drain(ByteBuffer buffer, FileChannel channel, MessageDigest digest)
                throws IOException {
            buffer.flip();
            digest.update(buffer.duplicate());
            AtomicFiles.writeFully(channel, buffer);
            buffer.clear();
        }
    }
}
