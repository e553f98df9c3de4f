package dev.pet.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.runtime.train.DataParallelFixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher's usage and config errors, which stop before any Spark context starts. */
class SparkMainTest {
    @TempDir
    Path dir;

    @Test
    void usageErrorsExitWithTwo() {
        assertEquals(2, SparkMain.run(new String[0]), "no run config");
        assertEquals(2, SparkMain.run(new String[] {"run.yaml", "--bogus"}), "unknown option");
        assertEquals(2, SparkMain.run(new String[] {"run.yaml", "--set"}), "option without its value");
        assertEquals(0, SparkMain.run(new String[] {"--help"}));
    }

    @Test
    void anUnreadableConfigExitsWithTwo() {
        assertEquals(2, SparkMain.run(new String[] {dir.resolve("missing.yaml").toString()}));
    }

    @Test
    void aBadOverrideExitsWithTwo() throws Exception {
        Path yaml = dir.resolve("run.yaml");
        Files.writeString(yaml, DataParallelFixtures.yaml(dir.resolve("out"), dir.resolve("corpus.txt"), 2, 2));
        assertEquals(2, SparkMain.run(new String[] {yaml.toString(), "--data-parallel", "two"}));
    }
}
