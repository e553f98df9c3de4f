package dev.pet.spark;

import dev.pet.api.PetException;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * The Spark launcher: {@code spark-submit --class dev.pet.spark.SparkMain pet-spark.jar RUN.yaml [--set k=v]...
 * [--data-parallel N]}, and what {@code bin/pet finetune RUN.yaml --spark MASTER} runs ({@code --master MASTER}).
 * {@code --data-parallel N} is {@code --set runner_config.data_parallel=N}. Exit codes
 * follow {@code pet}: 0 done, 1 run failed, 2 bad config or usage.
 */
public final class SparkMain {
    private SparkMain() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        Path config = null;
        String master = null;
        List<String> overrides = new ArrayList<>();
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--set" -> overrides.add(value(args, ++i, "--set"));
                    case "--master" -> master = value(args, ++i, "--master");
                    case "--data-parallel" -> overrides.add("runner_config.data_parallel="
                            + value(args, ++i, "--data-parallel"));
                    case "-h", "--help" -> {
                        System.out.println(usage());
                        return 0;
                    }
                    default -> {
                        if (args[i].startsWith("-") || config != null) {
                            throw new IllegalArgumentException("unexpected argument '" + args[i] + "'");
                        }
                        config = Path.of(args[i]);
                    }
                }
            }
            if (config == null) {
                throw new IllegalArgumentException("give the run config: RUN.yaml");
            }
        } catch (IllegalArgumentException e) {
            System.err.println("pet-spark: " + e.getMessage() + "\n" + usage());
            return 2;
        }
        RunConfig run;
        try {
            run = RunConfigLoader.load(config.toAbsolutePath(), overrides);
        } catch (ConfigException e) {
            System.err.println("pet-spark: " + e.getMessage());
            return 2;
        }
        SparkConf conf = new SparkConf().setAppName("PET Runtime fine-tuning " + config.getFileName());
        if (master != null) {
            conf.setMaster(master);
        }
        SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
        try {
            SparkFinetune.Result result = SparkFinetune.run(JavaSparkContext.fromSparkContext(spark.sparkContext()),
                    run);
            ReplicaStats leader = result.leader();
            System.out.printf(Locale.ROOT, "%s after %d steps, loss %.4f; run directory %s%n", leader.stopReason(),
                    leader.finalStep(), leader.finalLoss(), SparkFinetune.location(run));
            for (ReplicaStats r : result.replicas()) {
                System.out.printf(Locale.ROOT, "  replica %d at %s: %d steps, %.1f ms/step, %d gradient bytes sent%n",
                        r.rank(), r.address(), r.steps(), r.meanStepMillis(), r.exchangedBytes());
            }
            return 0;
        } catch (PetException e) {
            System.err.println("pet-spark: " + e.getMessage());
            return 1;
        } finally {
            spark.stop();
        }
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    private static String usage() {
        return "usage: spark-submit --class dev.pet.spark.SparkMain pet-spark.jar RUN.yaml [--set key=value]... "
                + "[--data-parallel N] [--master MASTER]";
    }
}
