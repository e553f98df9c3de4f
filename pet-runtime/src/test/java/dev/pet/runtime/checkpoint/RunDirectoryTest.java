package dev.pet.runtime.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetException;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.DataPosition;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunDirectoryTest {
    @TempDir
    Path tmp;

    static RunConfig config(Path out, String... overrides) {
        String yaml = "output_dir: '" + out + "'\n"
                + "model: {model_config: {checkpoint_name_or_path: gpt2-tiny, pet_config: {pet_type: lora}}}\n"
                + "runner_config: {max_steps: 4}\n";
        return RunConfigLoader.parse(yaml, "test.yaml", List.of(overrides));
    }

    static void checkpoint(RunDirectory run, long step) {
        run.checkpoints(2).save(new TrainerState(step, DataPosition.START, Map.of(), "h", 1.0, step),
                List.of((dir, s) -> Files.writeString(dir.resolve("w.txt"), "w" + s)));
    }

    @Test
    void aSecondRunIntoALockedDirectoryIsRefusedNamingTheHolder() {
        Path out = tmp.resolve("out");
        try (RunDirectory first = RunDirectory.open(config(out))) {
            PetException e = assertThrows(PetException.class, () -> RunDirectory.open(config(out, "resume_training=true")));
            assertTrue(e.getMessage().contains("output_dir " + out + " is in use by another run (pid "
                    + ProcessHandle.current().pid() + ", since "), e.getMessage());
            assertFalse(e instanceof ConfigException, "a busy directory is a runtime error (exit 1)");
        }
        // Released on close: the same run can resume.
        try (RunDirectory again = RunDirectory.open(config(out, "resume_training=true"))) {
            assertTrue(again.staleHolder().isEmpty(), "a clean release leaves no stale holder");
        }
    }

    @Test
    void aLockLeftByAKilledRunIsReportedAndTakenOver() throws Exception {
        Path out = Files.createDirectories(tmp.resolve("out"));
        // What a SIGKILLed holder leaves: its PID in the file, and no lock (the OS dropped it with the process).
        Files.writeString(out.resolve(RunDirectory.LOCK_FILE), "pid 999999\nsince 2026-01-01T00:00:00Z\n");
        try (RunDirectory run = RunDirectory.open(config(out))) {
            assertEquals("pid 999999, since 2026-01-01T00:00:00Z", run.staleHolder().orElseThrow());
            assertTrue(Files.readString(out.resolve(RunDirectory.LOCK_FILE)).startsWith("pid "
                    + ProcessHandle.current().pid()));
        }
        assertEquals("", Files.readString(out.resolve(RunDirectory.LOCK_FILE)), "released: no holder named");
    }

    @Test
    void lockFileIsHeldWithAnOsLock() throws Exception {
        Path out = tmp.resolve("out");
        try (RunDirectory run = RunDirectory.open(config(out));
                FileChannel other = FileChannel.open(out.resolve(RunDirectory.LOCK_FILE), StandardOpenOption.WRITE)) {
            // Another process would get null from tryLock; inside one JVM the overlap is reported as an exception.
            assertThrows(java.nio.channels.OverlappingFileLockException.class, other::tryLock);
        }
    }

    @Test
    void aFreshRunOverAnotherRunsFilesIsRefusedUnlessOverwrite() throws Exception {
        Path out = tmp.resolve("out");
        String firstId;
        try (RunDirectory first = RunDirectory.open(config(out))) {
            firstId = first.runId();
            checkpoint(first, 6);
            checkpoint(first, 8);
        }
        Files.writeString(out.resolve("notes.txt"), "the user's own file");
        ConfigException e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(out)));
        assertTrue(e.getMessage().startsWith("output_dir: " + out + " holds another run (" + firstId + ", started "),
                e.getMessage());
        assertTrue(e.getMessage().contains("checkpoint-6, checkpoint-8, run.json"), e.getMessage());
        assertTrue(e.getMessage().contains("--overwrite"), e.getMessage());

        try (RunDirectory second = RunDirectory.open(config(out, "overwrite_output_dir=true"))) {
            assertNotEquals(firstId, second.runId());
            assertFalse(Files.exists(out.resolve("checkpoint-6")), "overwrite deletes the old run's checkpoints");
            assertFalse(Files.exists(out.resolve("checkpoint-8")));
            assertEquals("the user's own file", Files.readString(out.resolve("notes.txt")), "and nothing else");
        }
    }

    @Test
    void pruningAndResumingOnlySeeThisRunsCheckpoints() throws Exception {
        Path out = tmp.resolve("out");
        try (RunDirectory old = RunDirectory.open(config(out))) {
            checkpoint(old, 6);
            checkpoint(old, 8);
        }
        // A copy of another run's checkpoints lands in the directory of a run that owns it now.
        Path foreign = tmp.resolve("foreign");
        Files.move(out.resolve("checkpoint-6"), foreign.resolveSibling("c6"));
        Files.move(out.resolve("checkpoint-8"), foreign.resolveSibling("c8"));
        try (RunDirectory run = RunDirectory.open(config(out, "overwrite_output_dir=true"))) {
            Files.move(foreign.resolveSibling("c6"), out.resolve("checkpoint-6"));
            Files.move(foreign.resolveSibling("c8"), out.resolve("checkpoint-8"));
            checkpoint(run, 2);
            checkpoint(run, 4);
            checkpoint(run, 5);
            CheckpointManager mine = run.checkpoints(2);
            assertEquals(List.of(4L, 5L), mine.list().stream().map(Checkpoint::step).toList(), "own, newest 2");
            assertTrue(Files.isDirectory(out.resolve("checkpoint-8")), "another run's checkpoints are never pruned");
            assertFalse(Files.exists(out.resolve("checkpoint-2")));
            assertEquals(5, mine.resumePoint().orElseThrow().step(), "resume ignores the higher foreign ones");
        }
    }

    @Test
    void resumingWithAChangedConfigNamesTheKeysOldAndNew() {
        Path out = tmp.resolve("out");
        RunDirectory.open(config(out)).close();
        PetException e = assertThrows(PetException.class, () -> RunDirectory.open(config(out, "resume_training=true",
                "runner_config.max_steps=9", "lr_schedule.learning_rate=0.5", "seed=3")));
        assertTrue(e.getMessage().contains("the config changed since it started (lr_schedule.learning_rate (was "
                + "5.0E-5, now 0.5), runner_config.max_steps (was 4, now 9), seed (was 42, now 3))"), e.getMessage());
    }

    @Test
    void aQuantizedRunResumesOnlyWithTheSameQuantization() {
        Path out = tmp.resolve("out");
        RunDirectory.open(config(out, "model.model_config.quantization.bits=4")).close();
        PetException other = assertThrows(PetException.class, () -> RunDirectory.open(config(out,
                "resume_training=true", "model.model_config.quantization.bits=8")));
        assertTrue(other.getMessage().contains("model.model_config.quantization.bits (was 4, now 8)"),
                other.getMessage());
        PetException none = assertThrows(PetException.class, () -> RunDirectory.open(config(out,
                "resume_training=true")));
        assertTrue(none.getMessage().contains("model.model_config.quantization"), none.getMessage());
        RunDirectory.open(config(out, "resume_training=true", "model.model_config.quantization.bits=4")).close();
    }

    @Test
    void resumingKeepsTheRunId() {
        Path out = tmp.resolve("out");
        String id;
        try (RunDirectory run = RunDirectory.open(config(out))) {
            id = run.runId();
        }
        try (RunDirectory run = RunDirectory.open(config(out, "resume_training=true"))) {
            assertEquals(id, run.runId());
        }
    }

    @Test
    void outputDirsThatCannotHoldARunAreExplained() throws Exception {
        Path file = Files.writeString(tmp.resolve("file.txt"), "x");
        ConfigException e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(file)));
        assertEquals("output_dir: " + file + " is a regular file, not a directory", e.getMessage());
        e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(file.resolve("sub"))));
        assertEquals("output_dir: " + file.resolve("sub") + ": " + file + " is a regular file, not a directory",
                e.getMessage());
        if (Files.exists(Path.of("/dev/null"))) {
            e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(Path.of("/dev/null"))));
            assertEquals("output_dir: /dev/null is a device or other special file, not a directory", e.getMessage());
        }
        if (Files.isDirectory(Path.of("/proc/self"))) {
            e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(Path.of("/proc/pet-run"))));
            assertTrue(e.getMessage().startsWith("output_dir: /proc/pet-run is on the proc file system"),
                    e.getMessage());
        }
    }

    @Test
    void aDamagedRunManifestIsNamed() throws Exception {
        Path out = tmp.resolve("out");
        RunDirectory.open(config(out)).close();
        Files.writeString(out.resolve(RunDirectory.MANIFEST_FILE), "{\"format\": \"pet-run/1\", \"run_id",
                StandardCharsets.UTF_8);
        ConfigException e = assertThrows(ConfigException.class, () -> RunDirectory.open(config(out, "resume_training=true")));
        assertTrue(e.getMessage().contains("cannot read " + out.resolve("run.json")), e.getMessage());
    }
}
