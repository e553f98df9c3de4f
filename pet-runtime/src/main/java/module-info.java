/** The runtime a user launches: run configs, data, schedules, metrics, checkpoints, plugins and the CLI. */
module dev.pet.runtime {
    requires transitive dev.pet.api;
    requires com.fasterxml.jackson.databind;
    requires com.fasterxml.jackson.dataformat.yaml;
    requires micrometer.core;
    requires micrometer.registry.prometheus;
    requires info.picocli;
    requires java.desktop;
    requires jdk.httpserver;
}
