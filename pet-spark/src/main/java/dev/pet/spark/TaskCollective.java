package dev.pet.spark;

import dev.pet.runtime.train.Collective;

/** The tasks of one barrier stage as a {@link Collective} that holds connections until the task ends. */
interface TaskCollective extends Collective, AutoCloseable {
    @Override
    void close();
}
