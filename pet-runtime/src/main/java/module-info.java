/**
 * The runtime a user launches: YAML run configs, the data pipeline, LR schedules, training listeners and metrics,
 * checkpoint directories, plugin discovery, and the {@code pet} command line.
 */
module dev.pet.runtime {
    requires transitive dev.pet.api;
    requires transitive dev.pet.engine;
    requires com.fasterxml.jackson.databind;
    requires com.fasterxml.jackson.dataformat.yaml;
    requires transitive micrometer.core;
    requires micrometer.registry.prometheus;
    requires info.picocli;
    requires java.desktop;
    requires java.management;
    requires jdk.httpserver;

    exports dev.pet.runtime;
    exports dev.pet.runtime.config;
    exports dev.pet.runtime.data;
    exports dev.pet.runtime.generate;
    exports dev.pet.runtime.serve;
    exports dev.pet.runtime.schedule;
    exports dev.pet.runtime.metrics;
    exports dev.pet.runtime.checkpoint;
    exports dev.pet.runtime.plugin;
    exports dev.pet.runtime.cli;
    exports dev.pet.runtime.train;

    opens dev.pet.runtime.cli to info.picocli;

    uses dev.pet.api.ModelProvider;
    uses dev.pet.runtime.PetEngine;
    uses dev.pet.api.PetAdapter;

    provides dev.pet.runtime.PetEngine with dev.pet.runtime.train.DefaultPetEngine;
}
