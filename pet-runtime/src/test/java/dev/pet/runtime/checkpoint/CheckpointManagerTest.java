package dev.pet.runtime.checkpoint;

import dev.pet.runtime.data.DataPosition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CheckpointManagerTest {
    static final String RUN = "run-a";

    @TempDir
    Path out;

    static TrainerState state(long step) {
        return new TrainerState(step, new DataPosition((int) (step / 10), step % 10),
                Map.of("dropout", 1234L + step, "shuffle", -5L), "abc123", 2.5 / step, step * 64);
    }

    static CheckpointWriter payload(String content) {
        return (dir, step) -> Files.writeString(dir.resolve("adapter_model.safetensors"), content + step);
    }

    @Test
    void savesPayloadAndStateIntoCheckpointDirectory() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 3);
        Checkpoint saved = manager.save(state(20), List.of(payload("A"), (dir, step) -> Files.writeString(dir.resolve("optimizer.safetensors"), "opt")));
        assertEquals(out.resolve("checkpoint-20"), saved.directory());
        assertEquals("A20", Files.readString(saved.directory().resolve("adapter_model.safetensors")));
        assertEquals("opt", Files.readString(saved.directory().resolve("optimizer.safetensors")));
        Checkpoint latest = manager.resumePoint().orElseThrow();
        assertEquals(state(20), latest.state());
        assertEquals(20, latest.step());
        assertEquals(2, latest.state().epoch());
        assertEquals(List.of("checkpoint-20"), names());
    }

    @Test
    void keepsOnlyTheNewestCheckpoints() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 2);
        for (long step : new long[] {5, 10, 15, 100}) {
            manager.save(state(step), List.of(payload("p")));
        }
        assertEquals(List.of(15L, 100L), manager.list().stream().map(Checkpoint::step).toList());
        assertEquals(List.of("checkpoint-100", "checkpoint-15"), names());
    }

    @Test
    void newestCompleteCheckpointIgnoresPartialAndBrokenDirectories() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 5);
        manager.save(state(5), List.of(payload("p")));
        Path partial = Files.createDirectories(out.resolve(".tmp-checkpoint-9-123"));
        Files.writeString(partial.resolve("adapter_model.safetensors"), "half");
        Path noState = Files.createDirectories(out.resolve("checkpoint-7"));
        Files.writeString(noState.resolve("adapter_model.safetensors"), "x");
        Path corrupt = Files.createDirectories(out.resolve("checkpoint-8"));
        Files.writeString(corrupt.resolve(CheckpointManager.STATE_FILE), "{\"format_version\": 1, \"step\": ");
        Path mismatched = Files.createDirectories(out.resolve("checkpoint-11"));
        CheckpointManager.writeState(mismatched.resolve(CheckpointManager.STATE_FILE), state(3));
        assertEquals(5, manager.resumePoint().orElseThrow().step());
        manager.save(state(6), List.of(payload("p")));
        assertFalse(Files.exists(partial), "stale temporary directory cleaned by the next save");
        assertEquals(6, manager.resumePoint().orElseThrow().step());
    }

    @Test
    void failingWriterLeavesNoCheckpointAndKeepsThePreviousOne() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 3);
        manager.save(state(4), List.of(payload("good")));
        CheckpointException e = assertThrows(CheckpointException.class, () -> manager.save(state(8),
                List.of(payload("p"), (dir, step) -> {
                    throw new IOException("disk full");
                })));
        assertTrue(e.getMessage().contains("checkpoint-8") && e.getMessage().contains("disk full"), e.getMessage());
        assertEquals(List.of("checkpoint-4"), names());
        assertEquals("good4", Files.readString(out.resolve("checkpoint-4/adapter_model.safetensors")));
    }

    @Test
    void savingTheSameStepAgainReplacesItWhole() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 3);
        manager.save(state(4), List.of(payload("old"), (dir, step) -> Files.writeString(dir.resolve("extra.bin"), "x")));
        manager.save(state(4), List.of(payload("new")));
        assertEquals("new4", Files.readString(out.resolve("checkpoint-4/adapter_model.safetensors")));
        assertFalse(Files.exists(out.resolve("checkpoint-4/extra.bin")));
        assertEquals(List.of("checkpoint-4"), names());
    }

    @Test
    void finalAdapterDirectoryIsWrittenAtomically() throws IOException {
        CheckpointManager manager = new CheckpointManager(out, RUN, 1);
        Path adapter = out.resolve("adapter");
        manager.writeAtomically(adapter, payload("final"), 30);
        assertEquals("final30", Files.readString(adapter.resolve("adapter_model.safetensors")));
        assertTrue(manager.list().isEmpty());
    }

    @Test
    void stateReaderNamesFileAndField() throws IOException {
        Path file = out.resolve("trainer_state.json");
        Files.writeString(file, "{\"format_version\": 1, \"step\": \"ten\", \"rng_state\": {}, \"config_hash\": \"h\"}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> CheckpointManager.readState(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("step must be an integer"), e.getMessage());
        Files.writeString(file, "{\"format_version\": 99}");
        e = assertThrows(CheckpointException.class, () -> CheckpointManager.readState(file));
        assertTrue(e.getMessage().contains("format_version 99"), e.getMessage());
    }

    private List<String> names() throws IOException {
        try (Stream<Path> list = Files.list(out)) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
