package dev.pet.runtime.data;

import dev.pet.runtime.config.DataLoaderConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PackedDatasetTest {
    @TempDir
    Path dir;

    private PackedDataset open(DataLoaderConfig.Type type, Path data, int seq, boolean shuffle, ByteTokenizer tok) {
        return PackedDataset.open(new DataLoaderConfig(type, data, shuffle), seq, tok, "bytes", new TokenCache(dir.resolve("cache")));
    }

    /** The corpus as the test expects it: UTF-8 bytes of each document, EOS (256) between documents. */
    private static long[] expected(String... documents) {
        List<Long> ids = new ArrayList<>();
        for (int d = 0; d < documents.length; d++) {
            if (d > 0) {
                ids.add(256L);
            }
            for (byte b : documents[d].getBytes(StandardCharsets.UTF_8)) {
                ids.add((long) (b & 0xFF));
            }
        }
        return ids.stream().mapToLong(Long::longValue).toArray();
    }

    @Test
    void packsTextFilesInOrderWithEosBetweenIntoNonOverlappingWindows() throws IOException {
        Path data = Files.createDirectories(dir.resolve("txt"));
        Files.writeString(data.resolve("b.txt"), "second file, longer than the first one\n");
        Files.writeString(data.resolve("a.txt"), "first file\n");
        Files.writeString(data.resolve("ignored.md"), "not text");
        long[] corpus = expected("first file\n", "second file, longer than the first one\n");
        int seq = 7;
        PackedDataset ds = open(DataLoaderConfig.Type.TEXT, data, seq, false, new ByteTokenizer());
        assertEquals(corpus.length, ds.tokenCount());
        assertEquals(corpus.length / (seq + 1), ds.windowCount());

        Iterator<Batch> eval = ds.evalBatches(2);
        long window = 0;
        while (eval.hasNext()) {
            Batch b = eval.next();
            for (int row = 0; row < b.batchSize(); row++, window++) {
                for (int t = 0; t <= seq; t++) {
                    assertEquals(corpus[(int) (window * (seq + 1) + t)], b.token(row, t), "window " + window + " t " + t);
                }
            }
            assertEquals(b.batchSize() * seq, b.lossTokens());
        }
        assertEquals(ds.windowCount(), window);

        BatchIterator train = ds.trainBatches(2, 1, DataPosition.START);
        Batch first = train.next();
        assertArrayEquals(Arrays.copyOfRange(corpus, 0, 2 * (seq + 1)), first.tokens());
        assertEquals(DataPosition.START, first.position());
    }

    @Test
    void secondOpenReadsTheCacheInsteadOfTokenizing() throws IOException {
        Path file = dir.resolve("one.txt");
        Files.writeString(file, "some text to tokenize, long enough for windows");
        ByteTokenizer tok = new ByteTokenizer();
        PackedDataset first = open(DataLoaderConfig.Type.TEXT, file, 4, false, tok);
        int calls = tok.encodeCalls.get();
        assertTrue(calls > 0);
        PackedDataset second = open(DataLoaderConfig.Type.TEXT, file, 4, false, tok);
        assertEquals(calls, tok.encodeCalls.get(), "second run must not tokenize again");
        assertEquals(first.tokenCount(), second.tokenCount());
        Files.writeString(file, "changed content changes the cache key entirely");
        PackedDataset third = open(DataLoaderConfig.Type.TEXT, file, 4, false, tok);
        assertTrue(tok.encodeCalls.get() > calls, "changed content must be tokenized");
        assertEquals(expected("changed content changes the cache key entirely").length, third.tokenCount());
        try (var files = Files.list(dir.resolve("cache"))) {
            assertTrue(files.noneMatch(p -> p.toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @Test
    void wikitextIsCleanedAndArticlesSeparatedByEos() throws IOException {
        Path file = dir.resolve("wiki.train.raw");
        Files.writeString(file, " \n = A = \n \n x @-@ y . \n = B = \n z . \n");
        PackedDataset ds = open(DataLoaderConfig.Type.WIKITEXT, file, 3, false, new ByteTokenizer());
        long[] corpus = expected("= A =\nx-y.", "= B =\nz.");
        assertEquals(corpus.length, ds.tokenCount());
        for (int i = 0; i < corpus.length; i++) {
            assertEquals(corpus[i], ds.tokens().token(i));
        }
    }

    @Test
    void jsonlPromptCompletionMasksThePrompt() throws IOException {
        Path file = dir.resolve("sft.jsonl");
        Files.writeString(file, "{\"prompt\":\"Q:\",\"completion\":\"A!\"}\n\n{\"text\":\"tt\",\"id\":7}\n");
        PackedDataset ds = open(DataLoaderConfig.Type.JSONL, file, 4, false, new ByteTokenizer());
        // Q : A ! EOS t t EOS
        long[] ids = {'Q', ':', 'A', '!', 256, 't', 't', 256};
        boolean[] inLoss = {false, false, true, true, true, true, true, true};
        assertEquals(ids.length, ds.tokenCount());
        for (int i = 0; i < ids.length; i++) {
            assertEquals(ids[i], ds.tokens().token(i));
            assertEquals(inLoss[i], ds.tokens().inLoss(i), "token " + i);
        }
        Batch b = ds.evalBatches(8).next();
        // Window 0 = tokens 0..4; its targets are tokens 1..4: ':' (prompt) then 'A', '!', EOS.
        assertArrayEquals(new float[] {0, 1, 1, 1}, b.lossMask());
        assertEquals(3, b.lossTokens());
    }

    @Test
    void jsonlErrorsNameFileAndLine() throws IOException {
        Path file = dir.resolve("bad.jsonl");
        Files.writeString(file, "{\"text\":\"ok\"}\n{\"prompt\":\"only prompt\"}\n");
        DataException e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.JSONL, file, 2, false, new ByteTokenizer()));
        assertTrue(e.getMessage().startsWith(file + ":2: expected either \"text\" or both"), e.getMessage());
        Files.writeString(file, "{\"text\": 5}\n");
        e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.JSONL, file, 2, false, new ByteTokenizer()));
        assertTrue(e.getMessage().contains(":1: \"text\" must be a string"), e.getMessage());
        Files.writeString(file, "{not json\n");
        e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.JSONL, file, 2, false, new ByteTokenizer()));
        assertTrue(e.getMessage().contains(":1: invalid JSON"), e.getMessage());
    }

    @Test
    void readsNanoGptUint16BinAndNpyInt32AndInt64() throws IOException {
        long[] values = new long[100];
        for (int i = 0; i < values.length; i++) {
            values[i] = (i * 977L) % 50257;
        }
        Path bin = dir.resolve("tok").resolve("a.bin");
        Files.createDirectories(bin.getParent());
        ByteBuffer buf = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            buf.putShort((short) v);
        }
        Files.write(bin, buf.array());
        PackedDataset fromBin = PackedDataset.open(new DataLoaderConfig(DataLoaderConfig.Type.TOKENS, bin, false), 9, null, null, null);
        for (int i = 0; i < values.length; i++) {
            assertEquals(values[i], fromBin.tokens().token(i));
        }
        Path npy32 = writeNpy(dir.resolve("tok").resolve("b.npy"), "<i4", values);
        Path npy64 = writeNpy(dir.resolve("c.npy"), "<i8", values);
        PackedDataset from64 = PackedDataset.open(new DataLoaderConfig(DataLoaderConfig.Type.TOKENS, npy64, false), 9, null, null, null);
        assertEquals(100, from64.tokenCount());
        assertEquals(values[99], from64.tokens().token(99));
        // A directory concatenates its files in name order: a.bin then b.npy.
        PackedDataset both = PackedDataset.open(new DataLoaderConfig(DataLoaderConfig.Type.TOKENS, bin.getParent(), false), 9, null, null, null);
        assertEquals(200, both.tokenCount());
        assertEquals(values[3], both.tokens().token(103));
        assertTrue(Files.exists(npy32));
    }

    @Test
    void rejectsMalformedNpyCleanly() throws IOException {
        Path wrongType = writeNpy(dir.resolve("f.npy"), "<f4", new long[4]);
        DataException e = assertThrows(DataException.class, () -> NpyHeader.read(wrongType));
        assertTrue(e.getMessage().contains("'<f4'"), e.getMessage());
        Path truncated = writeNpy(dir.resolve("t.npy"), "<i4", new long[50]);
        byte[] bytes = Files.readAllBytes(truncated);
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 10));
        e = assertThrows(DataException.class, () -> NpyHeader.read(truncated));
        assertTrue(e.getMessage().contains("declares 50 tokens"), e.getMessage());
        Path garbage = dir.resolve("g.npy");
        Files.write(garbage, new byte[] {1, 2, 3});
        assertThrows(DataException.class, () -> NpyHeader.read(garbage));
        Path hostile = dir.resolve("h.npy");
        ByteBuffer h = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        h.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 2).put((byte) 0).putInt(Integer.MAX_VALUE);
        Files.write(hostile, h.array());
        assertThrows(DataException.class, () -> NpyHeader.read(hostile));
    }

    static Path writeNpy(Path file, String descr, long[] values) throws IOException {
        int width = descr.endsWith("8") ? 8 : 4;
        String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + values.length + ",), }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(10 + header.length() + values.length * width).order(ByteOrder.LITTLE_ENDIAN);
        buf.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        buf.putShort((short) header.length()).put(header.getBytes(StandardCharsets.US_ASCII));
        for (long v : values) {
            if (width == 8) {
                buf.putLong(v);
            } else {
                buf.putInt((int) v);
            }
        }
        Files.write(file, buf.array());
        return file;
    }

    private PackedDataset numbered(int windows, int seq, boolean shuffle) throws IOException {
        long[] values = new long[windows * (seq + 1)];
        for (int i = 0; i < values.length; i++) {
            values[i] = i;
        }
        Path npy = writeNpy(dir.resolve("n" + windows + shuffle + ".npy"), "<i8", values);
        return PackedDataset.open(new DataLoaderConfig(DataLoaderConfig.Type.TOKENS, npy, shuffle), seq, null, null, null);
    }

    @Test
    void unshuffledTrainingTakesWindowsInFileOrderAndDropsTheLastPartialBatch() throws IOException {
        PackedDataset ds = numbered(7, 3, false);
        BatchIterator it = ds.trainBatches(2, 99, DataPosition.START);
        assertEquals(3, it.batchesPerEpoch());
        List<Long> firstTokens = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            Batch b = it.next();
            firstTokens.add(b.token(0, 0) / 4);
            firstTokens.add(b.token(1, 0) / 4);
        }
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 0L, 1L, 2L, 3L, 4L, 5L), firstTokens);
        assertEquals(new DataPosition(2, 0), it.position());
    }

    @Test
    void shufflingIsASeededPermutationPerEpoch() throws IOException {
        PackedDataset ds = numbered(40, 3, true);
        List<Long> epoch0 = windowsOf(ds.trainBatches(4, 7, DataPosition.START), 10);
        assertEquals(40, new HashSet<>(epoch0).size(), "every window once per epoch");
        assertNotEquals(sorted(epoch0), epoch0, "shuffled");
        assertEquals(epoch0, windowsOf(ds.trainBatches(4, 7, DataPosition.START), 10), "same seed, same order");
        assertNotEquals(epoch0, windowsOf(ds.trainBatches(4, 8, DataPosition.START), 10), "other seed, other order");
        List<Long> epoch1 = windowsOf(ds.trainBatches(4, 7, new DataPosition(1, 0)), 10);
        assertNotEquals(epoch0, epoch1, "each epoch reshuffles");
        assertEquals(sorted(epoch0), sorted(epoch1));
    }

    @Test
    void resumingFromASavedPositionContinuesExactlyAcrossEpochs() throws IOException {
        PackedDataset ds = numbered(13, 5, true);
        BatchIterator uninterrupted = ds.trainBatches(3, 11, DataPosition.START);
        List<long[]> all = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            all.add(uninterrupted.next().tokens());
        }
        BatchIterator first = ds.trainBatches(3, 11, DataPosition.START);
        for (int i = 0; i < 6; i++) {
            assertArrayEquals(all.get(i), first.next().tokens());
        }
        DataPosition saved = first.position();
        assertEquals(new DataPosition(1, 2), saved);
        BatchIterator resumed = ds.trainBatches(3, 11, saved);
        for (int i = 6; i < 10; i++) {
            assertArrayEquals(all.get(i), resumed.next().tokens(), "batch " + i);
        }
        assertThrows(DataException.class, () -> ds.trainBatches(3, 11, new DataPosition(0, 5)));
    }

    @Test
    void segmentedMappingReadsAcrossSegmentBoundaries() throws IOException {
        Path tokens = dir.resolve("seg.tokens");
        ByteBuffer buf = ByteBuffer.allocate(4 * 37).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 37; i++) {
            buf.putInt(1000 + i);
        }
        Files.write(tokens, buf.array());
        TokenSequence seq = TokenCache.open(tokens, null, 8);
        assertEquals(37, seq.size());
        for (int i = 0; i < 37; i++) {
            assertEquals(1000 + i, seq.token(i));
        }
        assertThrows(IndexOutOfBoundsException.class, () -> seq.token(37));
    }

    @Test
    void longDocumentsAreTokenizedInLineAlignedChunksThatReassembleExactly() throws IOException {
        StringBuilder text = new StringBuilder();
        for (int i = 0; text.length() < Corpora.CHUNK_CHARS * 2 + 5000; i++) {
            text.append("line ").append(i).append(" of a long document\n");
        }
        text.append("no trailing newline");
        List<String> chunks = new ArrayList<>();
        Corpora.chunks(new StringReader(text.toString()), chunks::add);
        assertTrue(chunks.size() >= 2);
        assertEquals(text.toString(), String.join("", chunks));
        for (int i = 0; i < chunks.size() - 1; i++) {
            assertTrue(chunks.get(i).endsWith("\n"));
        }
    }

    @Test
    void tooSmallCorpusAndMissingDirectoryAreClearErrors() throws IOException {
        Path file = dir.resolve("tiny.txt");
        Files.writeString(file, "abc");
        DataException e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.TEXT, file, 8, false, new ByteTokenizer()));
        assertTrue(e.getMessage().contains("fewer than one window of 9"), e.getMessage());
        e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.TEXT, dir.resolve("nope"), 8, false, new ByteTokenizer()));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        Path empty = Files.createDirectories(dir.resolve("empty"));
        e = assertThrows(DataException.class, () -> open(DataLoaderConfig.Type.TEXT, empty, 8, false, new ByteTokenizer()));
        assertTrue(e.getMessage().contains("has no .txt files"), e.getMessage());
    }

    @Test
    void aCorpusShorterThanOneBatchNamesTheSettingsToLower() throws IOException {
        Path file = dir.resolve("short.txt");
        Files.writeString(file, "x".repeat(40));
        PackedDataset ds = open(DataLoaderConfig.Type.TEXT, file, 8, false, new ByteTokenizer());
        DataException e = assertThrows(DataException.class, () -> ds.trainBatches(8, 1, DataPosition.START));
        assertTrue(e.getMessage().contains("fewer than one batch of 8; lower runner_config.batch_size"), e.getMessage());
        assertTrue(e.getMessage().contains("model.model_config.seq_length"), e.getMessage());
    }

    private static List<Long> windowsOf(BatchIterator it, int batches) {
        List<Long> windows = new ArrayList<>();
        for (int i = 0; i < batches; i++) {
            Batch b = it.next();
            for (int row = 0; row < b.batchSize(); row++) {
                windows.add(b.token(row, 0) / (b.seqLength() + 1));
            }
        }
        return windows;
    }

    private static List<Long> sorted(List<Long> list) {
        List<Long> copy = new ArrayList<>(list);
        copy.sort(null);
        return copy;
    }

}
